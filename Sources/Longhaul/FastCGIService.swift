public import FastCGI
public import ServiceLifecycle

/// A ``FastCGIServer`` as a `Service`: its accept threads serve a handler until graceful shutdown, then stop
/// accepting and finish the requests they are answering.
///
/// Open streams are not waited for: they end when their task does (the ``TaskTableService`` drain ends every
/// task).
public struct FastCGIService: Service, CustomStringConvertible {
    private let server: FastCGIServer
    private let handler: FastCGIServer.Handler
    private let quickResponder: (any QuickResponder)?
    /// The name the service group logs.
    public var description: String { "FastCGIService" }

    /// - Parameters:
    ///   - server: the server, initialised (its listen socket open) but not started.
    ///   - handler: answers each request, on an accept thread.
    public init(server: FastCGIServer, handler: @escaping FastCGIServer.Handler) {
        self.init(server: server, quickResponder: nil, handler: handler)
    }

    /// - Parameters:
    ///   - server: the server, initialised (its listen socket open) but not started.
    ///   - quickResponder: answers the requests it recognises before `handler` (``QuickResponder``).
    ///   - handler: answers every other request, on an accept thread.
    package init(
        server: FastCGIServer, quickResponder: (any QuickResponder)?, handler: @escaping FastCGIServer.Handler
    ) {
        self.server = server
        self.quickResponder = quickResponder
        self.handler = handler
    }

    /// Starts the accept threads; on graceful shutdown (or cancellation) stops accepting and waits for the threads.
    public func run() async {
        server.start(handler: handler, quickResponder: quickResponder)
        // Returns on graceful shutdown, throws on cancellation: both mean stop.
        try? await gracefulShutdown()
        server.stopAccepting()
        await server.waitForThreads()
    }
}
