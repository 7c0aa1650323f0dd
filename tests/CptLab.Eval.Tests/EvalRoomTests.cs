using CptLab.Eval;

namespace CptLab.Eval.Tests;

public class EvalRoomTests
{
    [Fact]
    public void Room_is_named() => Assert.Equal("CptLab.Eval", EvalRoom.Name);
}
