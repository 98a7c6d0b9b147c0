import LonghaulFuzzing

/// libFuzzer's entry point (`fuzz-markdown`): Markdown rendered as safe HTML.
/// The invariants are those of `FuzzTarget.markdown`.
/// - Parameters:
///   - data: the input.
///   - size: its length.
/// - Returns: 0; a broken invariant traps, and libFuzzer saves the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.markdown.fuzz(data, size)
}
