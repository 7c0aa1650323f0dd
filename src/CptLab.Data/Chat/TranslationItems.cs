using CptLab.Data.Tokenization;

namespace CptLab.Data.Chat;

/// <summary>
/// Cleaned catalog pairs → "translate this" conversations. Each pair goes one way, English → Chinese or Chinese →
/// English by a coin toss, with an instruction drawn from a small fixed set in English and in Chinese (a user may ask
/// in either language). The DPO rejected reply is the translation of another pair, drawn at random, in the same
/// target language and different from the true one. All draws come from one seeded RNG in pair order.
/// </summary>
static class TranslationItems
{
    static readonly string[] ToChinese =
    [
        "Translate the following text into Chinese:\n\n{0}",
        "Translate into Simplified Chinese:\n{0}",
        "What is this in Chinese?\n\n{0}",
        "请把下面的英文翻译成中文：\n\n{0}",
        "将下列文字翻译为简体中文：\n{0}",
    ];

    static readonly string[] ToEnglish =
    [
        "Translate the following Chinese text into English:\n\n{0}",
        "Translate into English:\n{0}",
        "What is this in English?\n\n{0}",
        "请把下面的中文翻译成英文：\n\n{0}",
        "将下列文字翻译为英文：\n{0}",
    ];

    public static (List<PostTrainItem> Items, long NoDistinctRejected) Build(IReadOnlyList<TranslationPairs.Pair> pairs, Random rng)
    {
        var items = new List<PostTrainItem>(pairs.Count);
        long noRejected = 0;
        for (var i = 0; i < pairs.Count; i++)
        {
            var toChinese = rng.Next(2) == 0;
            var phrasings = toChinese ? ToChinese : ToEnglish;
            var phrasing = phrasings[rng.Next(phrasings.Length)];
            var (source, target) = toChinese ? (pairs[i].English, pairs[i].Chinese) : (pairs[i].Chinese, pairs[i].English);
            string? rejected = null;
            for (var attempt = 0; attempt < 16 && pairs.Count > 1 && rejected is null; attempt++)
            {
                var j = rng.Next(pairs.Count - 1);
                if (j >= i) j++;
                var other = toChinese ? pairs[j].Chinese : pairs[j].English;
                if (other != target) rejected = other;
            }
            if (rejected is null) { noRejected++; continue; }
            items.Add(new PostTrainItem("translation\0" + pairs[i].English, [new ChatMessage("user", string.Format(phrasing, source))], target, rejected));
        }
        return (items, noRejected);
    }
}
