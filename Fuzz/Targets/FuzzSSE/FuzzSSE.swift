import LonghaulFuzzing

/// libFuzzer's entry point (`fuzz-sse`): the upstream SSE parser.
/// The invariants are those of `FuzzTarget.sse`.
/// - Parameters:
///   - data: the input.
///   - size: its length.
/// - Returns: 0; a broken invariant traps, and libFuzzer saves the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.sse.fuzz(data, size)
}
