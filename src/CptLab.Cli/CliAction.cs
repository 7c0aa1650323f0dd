using CptLab.Core;

namespace CptLab.Cli;

/// <summary>
/// Runs a verb's body so that a user error prints one clear line on stderr and exits 1, and a bug prints
/// one line too (with the stack trace only when CPTLAB_DEBUG=1), never an unhandled-exception dump.
/// </summary>
public static class CliAction
{
    public const int UserError = 1;
    public const int InternalError = 70; // EX_SOFTWARE

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (CptLabException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error ({e.GetType().Name}): {e.Message}");
            if (Environment.GetEnvironmentVariable("CPTLAB_DEBUG") == "1") Console.Error.WriteLine(e);
            else Console.Error.WriteLine("  this is a bug in CptLab; run again with CPTLAB_DEBUG=1 for the stack trace and report it");
            return InternalError;
        }
    }
}
