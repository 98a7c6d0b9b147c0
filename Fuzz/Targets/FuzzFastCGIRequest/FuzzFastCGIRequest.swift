import LonghaulFuzzing

/// libFuzzer's entry point (`fuzz-fastcgi-request`): FastCGI parameters to a request, its decoders and the router.
/// The invariants are those of `FuzzTarget.fastCGIRequest`.
/// - Parameters:
///   - data: the input.
///   - size: its length.
/// - Returns: 0; a broken invariant traps, and libFuzzer saves the input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.fastCGIRequest.fuzz(data, size)
}
