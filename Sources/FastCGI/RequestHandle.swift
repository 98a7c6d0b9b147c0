import CFastCGI
import Glibc

/// Owns one heap-allocated `FCGX_Request`. It is touched by one thread at a time: the accept thread until the
/// request is answered or handed off; a streamed request's socket is then written by the ``StreamWriter`` (raw
/// records, libfcgi untouched) until its finish queue calls ``finish()``.
final class RequestHandle: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<FCGX_Request>

    init(listenFD: Int32) {
        pointer = .allocate(capacity: 1)
        FCGX_InitRequest(pointer, listenFD, 0)
    }

    deinit {
        FCGX_Free(pointer, 1)
        pointer.deallocate()
    }

    /// Blocks until a request arrives; `false` once the listen socket is shut down.
    func accept() -> Bool {
        FCGX_Accept_r(pointer) >= 0
    }

    /// Takes the parameters libfcgi read for this request, without a copy: the request stops pointing at them, so
    /// libfcgi's next finish or accept leaves them alone, and the value returned frees them with its last copy
    /// (see ``FastCGIParameters/init(takingLibfcgiEnvironment:block:)``).
    /// - Parameter scan: the environment's ``ParameterScan``, made by ``scanParams()``.
    func takeParams(_ scan: ParameterScan) -> FastCGIParameters {
        guard let environment = pointer.pointee.envp else { return FastCGIParameters() }
        let block = pointer.pointee.paramsPtr
        pointer.pointee.envp = nil
        pointer.pointee.paramsPtr = nil
        return FastCGIParameters(
            takingLibfcgiEnvironment: environment, block: UnsafeMutableRawPointer(block), scan: scan)
    }

    /// Finds the well-known parameters of the request libfcgi read, where they lie (libfcgi still owns them).
    func scanParams() -> ParameterScan {
        guard let environment = pointer.pointee.envp else { return ParameterScan() }
        return ParameterScan(environment)
    }

    /// The parameters libfcgi read, in place, with their scan: valid until the request is finished or taken.
    func parametersInPlace(_ scan: ParameterScan) -> FastCGIRequestInPlace {
        FastCGIRequestInPlace(entries: pointer.pointee.envp, scan: scan)
    }

    /// Reads the body, up to `limit` bytes; `nil` when it is longer than that.
    func readBody(contentLength: Int, limit: Int) -> [UInt8]? {
        guard contentLength > 0 else { return [] }
        guard contentLength <= limit else { return nil }
        var body = [UInt8](repeating: 0, count: contentLength)
        var filled = 0
        body.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            while filled < contentLength {
                let count = base.advanced(by: filled).withMemoryRebound(
                    to: CChar.self, capacity: contentLength - filled
                ) {
                    FCGX_GetStr($0, Int32(contentLength - filled), pointer.pointee.`in`)
                }
                if count <= 0 { break }
                filled += Int(count)
            }
        }
        body.removeLast(contentLength - filled)
        return body
    }

    /// Writes bytes into libfcgi's output buffer; `false` once the connection is broken.
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        let written = FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), pointer.pointee.out)
        return written == Int32(bytes.count)
    }

    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Writes a literal's bytes (a status line).
    func write(_ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { write(UnsafeRawBufferPointer($0)) }
    }

    /// Sends what is buffered; `false` once the client has gone away.
    func flush() -> Bool {
        FCGX_FFlush(pointer.pointee.out) >= 0
    }

    /// Ends the request (END_REQUEST to nginx). The handle can accept again afterwards.
    func finish() {
        FCGX_Finish_r(pointer)
    }

    /// Ends an answered request, closing its connection without libfcgi's lingering close when that close has
    /// nothing to guard.
    ///
    /// libfcgi closes a connection by shutting down its own side, then waiting in `poll` until nginx has closed
    /// nginx's and reading to the end (fcgiapp.c `FCGX_Free`, os_unix.c `OS_Close`): three system calls and a sleep
    /// per request on the accept thread. It guards against closing with input still unread, which would reset the
    /// connection before nginx has read the answer. So when the request's input is read to its end (the empty
    /// FCGI_STDIN record: nginx sends nothing after it on a connection it does not keep), the connection is closed
    /// at once (`FCGX_Detach`: libfcgi then skips the lingering part). Otherwise (a body left unread, a kept
    /// connection) libfcgi closes as it always does.
    /// - Parameter bodyRead: whether the body was read to its length (then only the end of the input is left, and
    ///   nginx sends it right after the body, so looking for it does not wait); `false` for a body too large.
    func finishAnswered(bodyRead: Bool) {
        if bodyRead, pointer.pointee.keepConnection == 0, FCGX_GetChar(pointer.pointee.`in`) == -1 {
            _ = FCGX_Detach(pointer)
        }
        FCGX_Finish_r(pointer)
    }
}
