import LonghaulFuzzing

/// libFuzzer's entry point (`fuzz-json-request`): the body of POST /api/tasks and the JSON serializer.
/// The invariants are those of `FuzzTarget.jsonRequest`.
/// - Parameters:
///   - data: the input.
///   - size: its length.
/// - Returns: 0; a broken invariant traps, and libFuzzer saves the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.jsonRequest.fuzz(data, size)
}
