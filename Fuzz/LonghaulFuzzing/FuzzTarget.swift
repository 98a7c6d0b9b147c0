/// The fuzz targets: each runs one input through a decoder and checks the invariants it must keep.
///
/// libFuzzer calls ``fuzz(_:_:)`` from the binaries in `Fuzz/Targets/`; `FuzzRegressionTests` replays the seed
/// corpora (`Fuzz/Corpus/<name>/`) and the saved crashes (`Fuzz/Regressions/<name>/`) through ``check(_:)``, so the
/// fuzzer and the tests share one set of checks.
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// `URLEncodedForm.decode`: query strings and form bodies.
    case form
    /// `TaskRequest.decode` (the body of `POST /api/tasks`) and the JSON serializer.
    case jsonRequest = "json-request"
    /// `SSEParser` over upstream event streams.
    case sse
    /// FastCGI parameters to a `FastCGIRequest`, its derived properties, `Request`'s decoders and the app's router.
    case fastCGIRequest = "fastcgi-request"
    /// `MarkdownRenderer`: a model's Markdown to the HTML of a finished answer.
    case markdown

    /// The target's name: its binary is `fuzz-<name>`, its corpus folders are named after it.
    package var name: String { rawValue }

    /// Runs one input and checks the invariants.
    /// - Parameter input: the bytes.
    /// - Throws: ``InvariantViolation`` when the code under test broke one.
    package func check(_ input: UnsafeBufferPointer<UInt8>) throws(InvariantViolation) {
        switch self {
        case .form: try FormChecks.run(input)
        case .jsonRequest: try JSONRequestChecks.run(input)
        case .sse: try SSEChecks.run(input)
        case .fastCGIRequest: try FastCGIRequestChecks.run(input)
        case .markdown: try MarkdownChecks.run(input)
        }
    }

    /// Runs one input and checks the invariants.
    /// - Parameter input: the bytes.
    /// - Throws: ``InvariantViolation`` when the code under test broke one.
    package func check(_ input: [UInt8]) throws(InvariantViolation) {
        // withUnsafeBufferPointer's closure cannot throw a typed error through it; carry the result out instead.
        let result: Result<Void, InvariantViolation> = input.withUnsafeBufferPointer { buffer in
            do throws(InvariantViolation) {
                try check(buffer)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// The body of `LLVMFuzzerTestOneInput`: runs the input and traps on a broken invariant, which libFuzzer
    /// reports as a crash and saves as an artifact.
    /// - Parameters:
    ///   - data: the input (libFuzzer may pass a null pointer for the empty input).
    ///   - size: its length.
    /// - Returns: 0, as libFuzzer requires.
    package func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        do {
            try check(UnsafeBufferPointer(start: size > 0 ? data : nil, count: size))
        } catch {
            fatalError("\(error)")
        }
        return 0
    }
}

/// A broken invariant: what was expected and what happened.
package struct InvariantViolation: Error, CustomStringConvertible, Sendable {
    /// The target that found it.
    package var target: FuzzTarget
    /// What went wrong.
    package var message: String

    /// - Parameters:
    ///   - target: the target that found it.
    ///   - message: what went wrong.
    package init(_ target: FuzzTarget, _ message: String) {
        self.target = target
        self.message = message
    }

    package var description: String { "fuzz target \(target.name): invariant broken: \(message)" }
}

/// Throws an ``InvariantViolation`` unless a condition holds.
func expect(
    _ condition: @autoclosure () -> Bool, _ target: FuzzTarget, _ message: @autoclosure () -> String
) throws(InvariantViolation) {
    if !condition() { throw InvariantViolation(target, message()) }
}

/// Byte-for-byte string equality (`==` on String compares canonical equivalence, which would hide a change of
/// normalisation).
func sameBytes(_ lhs: String, _ rhs: String) -> Bool {
    lhs.utf8.elementsEqual(rhs.utf8)
}

/// Byte-for-byte equality of decoded name/value pairs.
func samePairs(_ lhs: [(name: String, value: String)], _ rhs: [(name: String, value: String)]) -> Bool {
    lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { sameBytes($0.name, $1.name) && sameBytes($0.value, $1.value) }
}

/// A short, printable rendering of bytes or text for messages.
func show(_ text: String) -> String {
    let escaped = text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
    return escaped.count > 200 ? "\"\(escaped.prefix(200))…\"" : "\"\(escaped)\""
}
