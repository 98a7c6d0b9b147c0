extension StringProtocol {
    /// The text without the whitespace around it: the package's one trim. `Character.isWhitespace` is Unicode-aware
    /// and needs no Foundation bridge, so a text of only spaces (of any kind) becomes empty.
    /// - Returns: the text between the first and the last character that is not whitespace.
    public func trimmingWhitespace() -> SubSequence {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace })
        else { return self[endIndex...] }
        return self[first...last]
    }
}
