using CptLab.Data.Tokenization;
using Microsoft.Playwright;

namespace CptLab.Serving.Tests;

/// <summary>
/// The web chat page in headless Chromium (Debian's /usr/bin/chromium, installed by scripts/ensure-chromium.sh,
/// which test.sh runs), driven by Playwright: a two-turn conversation whose streamed replies must equal the
/// library's greedy generation for the same conversation, history included.
/// </summary>
[Collection("server")]
public class WebPageTests(SharedServer shared)
{
    const string Chromium = "/usr/bin/chromium";
    RunningServer S => shared.Server;

    [Fact]
    public async Task Page_streams_replies_and_sends_the_conversation_history()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: run scripts/ensure-chromium.sh (test.sh does) to install Debian's chromium");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        });
        var page = await browser.NewPageAsync();
        var consoleErrors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        await page.GotoAsync(S.Address.ToString());
        await Assertions.Expect(page.Locator("#model")).ToHaveTextAsync(S.Model.Name);

        await page.FillAsync("#temperature", "0");
        await page.FillAsync("#max_tokens", "30");
        await page.EvaluateAsync("() => { window.updates = 0; new MutationObserver(() => window.updates++).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true }); }");

        var first = await Turn(page, "The quick brown fox", 1);
        var conversation = new List<ChatMessage> { new("user", "The quick brown fox") };
        Assert.Equal(Reference.Greedy(S.Model, S.Model.EncodeChat(conversation), 30).Text, first);
        Assert.True(await page.EvaluateAsync<int>("() => window.updates") > 3, "the reply should be rendered piece by piece as it streams");

        var second = await Turn(page, "And the dog?", 2);
        conversation.Add(new("assistant", first));
        conversation.Add(new("user", "And the dog?"));
        Assert.Equal(Reference.Greedy(S.Model, S.Model.EncodeChat(conversation), 30).Text, second);

        Assert.Equal(4, await page.Locator(".msg").CountAsync());
        Assert.Equal(0, await page.Locator(".error").CountAsync());
        Assert.Empty(consoleErrors);

        await page.ClickAsync("#clear");
        Assert.Equal(0, await page.Locator(".msg").CountAsync());
    }

    static async Task<string> Turn(IPage page, string text, int nth)
    {
        await page.FillAsync("#input", text);
        await page.PressAsync("#input", "Enter");
        var reply = page.Locator(".msg.assistant").Nth(nth - 1);
        await Assertions.Expect(reply).ToHaveAttributeAsync("data-done", "true", new() { Timeout = 30_000 });
        Assert.NotEqual("", await reply.GetAttributeAsync("data-finish"));
        return (await reply.GetAttributeAsync("data-content"))!;
    }
}
