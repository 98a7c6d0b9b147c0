/// Why the FastCGI server could not start or run.
public struct FastCGIError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Equatable {
        case initFailed
        case openSocketFailed
        case chmodFailed
        case notASocket
    }

    private let code: Code
    /// What was being done, with the C library's message or errno text.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// `FCGX_Init` failed.
    public static func initFailed(_ detail: String) -> FastCGIError { .init(.initFailed, detail) }
    /// The listen socket could not be opened.
    public static func openSocketFailed(_ detail: String) -> FastCGIError { .init(.openSocketFailed, detail) }
    /// The socket's permissions could not be set.
    public static func chmodFailed(_ detail: String) -> FastCGIError { .init(.chmodFailed, detail) }
    /// File descriptor 0 is not a listening socket (not started by spawn-fcgi or a socket unit).
    public static func notASocket(_ detail: String) -> FastCGIError { .init(.notASocket, detail) }

    public static func == (lhs: FastCGIError, rhs: FastCGIError) -> Bool { lhs.code == rhs.code }

    public var description: String {
        switch code {
        case .initFailed: "cannot initialise libfcgi: \(detail)"
        case .openSocketFailed: "cannot open the FastCGI socket: \(detail)"
        case .chmodFailed: "cannot set the FastCGI socket's mode: \(detail)"
        case .notASocket: "no listen socket on fd 0 (run under spawn-fcgi, or pass --socket): \(detail)"
        }
    }
}
