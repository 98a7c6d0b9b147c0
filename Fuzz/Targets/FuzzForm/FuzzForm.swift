import LonghaulFuzzing

/// libFuzzer's entry point (`fuzz-form`): the form and query-string decoder.
/// The invariants are those of `FuzzTarget.form`.
/// - Parameters:
///   - data: the input.
///   - size: its length.
/// - Returns: 0; a broken invariant traps, and libFuzzer saves the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.form.fuzz(data, size)
}
