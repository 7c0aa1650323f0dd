using System.Diagnostics;
using System.Text;
using CptLab.Data.Tokenization;
using CptLab.TestKit;

namespace CptLab.Cli.Tests;

/// <summary>`cptlab data prepare` killed with SIGKILL or stopped with SIGINT part-way, then run again, writes the bytes of an uninterrupted run.</summary>
public class PrepareKillTests
{
    [Fact]
    public void Kill_9_then_the_same_command_resumes_to_byte_identical_output()
    {
        var dir = Directory.CreateTempSubdirectory("cptlab-prepare-kill-").FullName;
        try
        {
            // Ten files of 1,500 documents, with a duplicate of the first file's documents in the last one.
            var input = Path.Combine(dir, "in");
            Directory.CreateDirectory(input);
            for (var f = 0; f < 10; f++)
            {
                var docs = Enumerable.Range(0, 1500).Select(i => SyntheticText.JsonLine(SyntheticText.English(10_000 * f + i, 80)));
                if (f == 9) docs = docs.Append(SyntheticText.JsonLine(SyntheticText.English(3, 80)));
                File.WriteAllLines(Path.Combine(input, $"part-{f:D2}.jsonl"), docs);
            }
            var tokenizer = Path.Combine(dir, "tokenizer.json");
            BpeTrainer.Train(File.ReadLines(Path.Combine(input, "part-00.jsonl")).Take(200).ToList(), new BpeTrainerOptions { VocabSize = 800 }).Save(tokenizer);
            string[] Args(string outDir, int threads) =>
                ["data", "prepare", "--source", $"web=en:{input}/*.jsonl", "--tokenizer", tokenizer, "--out", outDir, "--threads", threads.ToString()];

            var straight = Path.Combine(dir, "straight");
            var log = new StringBuilder();
            Assert.True(CliProcess.Start(log, Args(straight, 2)).WaitForExitOrKill(TimeSpan.FromMinutes(3)) == 0, log.ToString());

            var killed = Path.Combine(dir, "killed");
            var parts = Path.Combine(killed, ".prepare-parts");
            using (var child = CliProcess.Start(Args(killed, 1)))
            {
                var sw = Stopwatch.StartNew();
                while ((!Directory.Exists(parts) || Directory.EnumerateFiles(parts, "*.meta").Count() < 2) && !child.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(10);
                Assert.False(child.HasExited, "prepare finished before it could be killed; make the corpus larger");
                child.Kill(entireProcessTree: true); // SIGKILL: no clean-up code runs
                child.WaitForExit();
            }
            var done = Directory.EnumerateFiles(parts, "*.meta").Count();
            Assert.InRange(done, 2, 9);
            Assert.True(File.Exists(Path.Combine(killed, "prepare.state.json")));
            Assert.False(File.Exists(Path.Combine(killed, "manifest.json")));

            log.Clear();
            Assert.True(CliProcess.Start(log, Args(killed, 1)).WaitForExitOrKill(TimeSpan.FromMinutes(3)) == 0, log.ToString());
            Assert.Contains($"resuming: {done} of 10 files already prepared", log.ToString());
            foreach (var name in new[] { "manifest.json", "rejects.jsonl", "web.train.bin", "web.train.idx", "web.val.bin", "web.val.idx" })
                Assert.True(File.ReadAllBytes(Path.Combine(straight, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(killed, name))), $"{name} differs after kill -9 and resume");
            Assert.Contains("exact_duplicate", File.ReadAllText(Path.Combine(killed, "rejects.jsonl")));
            Assert.False(Directory.Exists(parts), "the parts are removed once the shards are written");

            // Ctrl-C (SIGINT): exits 130 with the advice to run again; running again gives the same bytes.
            var interrupted = Path.Combine(dir, "interrupted");
            var intParts = Path.Combine(interrupted, ".prepare-parts");
            log.Clear();
            using (var child = CliProcess.Start(log, Args(interrupted, 1)))
            {
                var sw = Stopwatch.StartNew();
                while ((!Directory.Exists(intParts) || !Directory.EnumerateFiles(intParts, "*.meta").Any()) && !child.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(10);
                Assert.False(child.HasExited, "prepare finished before the signal");
                using (var kill = Process.Start("kill", ["-INT", child.Id.ToString()])) kill.WaitForExit();
                Assert.True(child.WaitForExit(TimeSpan.FromMinutes(1)), "cptlab data prepare did not stop after SIGINT");
                Assert.Equal(130, child.ExitCode);
            }
            Assert.Contains("run the same command again to resume", log.ToString());
            Assert.Empty(Directory.EnumerateFiles(intParts, "*.tmp"));
            Assert.True(CliProcess.Start(Args(interrupted, 2)).WaitForExitOrKill(TimeSpan.FromMinutes(3)) == 0);
            foreach (var name in new[] { "manifest.json", "rejects.jsonl", "web.train.bin", "web.train.idx", "web.val.bin", "web.val.idx" })
                Assert.True(File.ReadAllBytes(Path.Combine(straight, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(interrupted, name))), $"{name} differs after SIGINT and resume");
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
