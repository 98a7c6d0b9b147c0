import Curl
import ServiceLifecycle

/// The ``CurlHTTPClient``'s thread as a `Service`: it runs from the client's creation; on graceful shutdown (after
/// the task table has drained, since the jobs use it) the client aborts what is left and its thread ends.
struct CurlClientService: Service, CustomStringConvertible {
    let client: CurlHTTPClient
    var description: String { "CurlClientService" }

    func run() async {
        // Returns on graceful shutdown, throws on cancellation: both mean stop.
        try? await gracefulShutdown()
        client.shutdown()
    }
}
