import FastCGI
import Foundation
import Longhaul

extension OpenAPIDocument {
    /// The document as an app mounted at a base path serves it: its `servers` name that path, so that a client
    /// generated from it calls the right addresses. At the root it is served as generated.
    /// - Parameter basePath: the app's base path (`""` at the root).
    /// - Returns: the JSON text.
    static func text(basePath: String) -> String {
        guard !basePath.isEmpty,
            var document = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        else { return json }
        document["servers"] = [["url": basePath, "description": "This server, under its base path."]]
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return json }
        return String(decoding: data, as: UTF8.self)
    }

    /// `GET /api/openapi.json`: the document, which changes only with the server's version.
    /// - Parameter text: the document, from ``text(basePath:)``.
    /// - Returns: the response.
    static func response(_ text: String) -> Response {
        Response(
            status: 200, contentType: "application/json", text: text,
            headers: [HeaderField("Cache-Control", "no-cache")])
    }
}
