namespace CptLab.Templates;

/// <summary>A node of a parsed template; <see cref="Pos"/> is its offset in the source.</summary>
abstract record Node(int Pos);

// Statements
sealed record TextNode(int Pos, string Text) : Node(Pos);
sealed record OutputNode(int Pos, Expr Value) : Node(Pos);
sealed record SetNode(int Pos, Expr Target, Expr? Value, List<Node> Body) : Node(Pos);
sealed record IfNode(int Pos, Expr Test, List<Node> Body, List<Node> Else) : Node(Pos);
sealed record ForNode(int Pos, Expr LoopVar, Expr Iterable, Expr? Condition, List<Node> Body, List<Node> Else) : Node(Pos);
sealed record MacroNode(int Pos, string Name, List<Expr> Parameters, List<Node> Body) : Node(Pos);

// Expressions
abstract record Expr(int Pos) : Node(Pos);
sealed record LiteralExpr(int Pos, Value Value) : Expr(Pos);
sealed record NameExpr(int Pos, string Name) : Expr(Pos);
sealed record ListExpr(int Pos, List<Expr> Items, bool IsTuple) : Expr(Pos);
sealed record DictExpr(int Pos, List<(Expr Key, Expr Value)> Entries) : Expr(Pos);
/// <summary><c>a.b</c> (Property is a NameExpr or integer literal, not computed) or <c>a[b]</c> (computed).</summary>
sealed record MemberExpr(int Pos, Expr Object, Expr Property, bool Computed) : Expr(Pos);
sealed record SliceExpr(int Pos, Expr? Start, Expr? Stop, Expr? Step) : Expr(Pos);
sealed record CallExpr(int Pos, Expr Callee, List<Expr> Args) : Expr(Pos);
sealed record KeywordArgExpr(int Pos, string Name, Expr Value) : Expr(Pos);
sealed record BinaryExpr(int Pos, string Op, Expr Left, Expr Right) : Expr(Pos);
sealed record UnaryExpr(int Pos, string Op, Expr Operand) : Expr(Pos);
/// <summary><c>x | name</c> (Args null) or <c>x | name(args)</c>.</summary>
sealed record FilterExpr(int Pos, Expr Operand, string Name, List<Expr>? Args) : Expr(Pos);
sealed record TestExpr(int Pos, Expr Operand, bool Negate, string Name) : Expr(Pos);
/// <summary><c>a if b</c> without else: a when b, else undefined (and a loop filter in <c>for x in xs if c</c>).</summary>
sealed record SelectExpr(int Pos, Expr Value, Expr Test) : Expr(Pos);
sealed record TernaryExpr(int Pos, Expr Condition, Expr IfTrue, Expr IfFalse) : Expr(Pos);
