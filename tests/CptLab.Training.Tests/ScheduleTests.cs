using CptLab.Core;
using CptLab.Training;

namespace CptLab.Training.Tests;

public class ScheduleTests
{
    const double Peak = 1e-3;

    [Fact]
    public void Cosine_with_warmup()
    {
        var s = new LrSchedule(ScheduleKind.Cosine, Peak, TotalSteps: 101, WarmupSteps: 10, MinLrRatio: 0.1).Validate();
        Assert.Equal(Peak * 1 / 10, s.At(0), 15);
        Assert.Equal(Peak * 5 / 10, s.At(4), 15);
        Assert.Equal(Peak, s.At(9), 15);
        Assert.Equal(Peak, s.At(10), 15);                                         // cosine starts at the peak
        Assert.Equal(Peak * 0.1 + Peak * 0.9 * 0.5, s.At(10 + 45), 15);          // halfway: the mean of peak and min
        Assert.Equal(Peak * 0.1, s.At(100), 15);                                  // last step: the minimum
    }

    [Theory]
    [InlineData(AnnealShape.Linear, 0.55e-3)]         // p = 0.5: peak − (peak − min)·0.5
    [InlineData(AnnealShape.Cosine, 0.55e-3)]         // halfway, cosine is at the mean too
    [InlineData(AnnealShape.Exponential, 0.316227766016838e-3)] // peak·(min/peak)^0.5 = 1e-3·√0.1
    [InlineData(AnnealShape.OneMinusSqrt, 0.363603896932107e-3)] // min + (peak − min)(1 − √0.5)
    public void Wsd_anneal_shapes_at_mid_decay(AnnealShape shape, double expected)
    {
        // 100 steps, warmup 10, decay over the last 20% = steps 80…99; step 89 is p = 10/20.
        var s = new LrSchedule(ScheduleKind.Wsd, Peak, 100, 10, MinLrRatio: 0.1, DecayFraction: 0.2, Anneal: shape).Validate();
        Assert.Equal(Peak, s.At(50), 15);   // stable
        Assert.Equal(Peak, s.At(79), 15);   // last stable step
        Assert.Equal(expected, s.At(89), 12);
        Assert.Equal(Peak * 0.1, s.At(99), 12);
    }

    [Fact]
    public void Constant_and_rewarming_from_a_nonzero_lr()
    {
        var s = new LrSchedule(ScheduleKind.Constant, Peak, 50, WarmupSteps: 4, WarmupInitLr: 2e-4).Validate();
        Assert.Equal(2e-4 + (Peak - 2e-4) * 0.25, s.At(0), 15);
        Assert.Equal(Peak, s.At(3), 15);
        Assert.Equal(Peak, s.At(49), 15);
    }

    [Fact]
    public void Invalid_schedules_name_the_key()
    {
        Assert.Equal("warmup", Assert.Throws<ConfigException>(() => new LrSchedule(ScheduleKind.Cosine, Peak, 10, 11).Validate()).Key);
        Assert.Equal("min_lr_ratio", Assert.Throws<ConfigException>(() => new LrSchedule(ScheduleKind.Wsd, Peak, 10, 0, MinLrRatio: 0, Anneal: AnnealShape.Exponential).Validate()).Key);
    }
}
