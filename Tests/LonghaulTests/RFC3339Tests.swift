import Foundation
import Testing

@testable import Longhaul

/// `Date.rfc3339` writes its digits itself; it must give exactly what Foundation's ISO 8601 style gives.
@Suite(.timeLimit(.minutes(1))) struct RFC3339Tests {
    private static let style = Date.ISO8601FormatStyle(
        includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)

    @Test func matchesFoundationOnEdges() {
        let edges: [TimeInterval] = [
            -978_307_200, -978_307_199.9995, -26_524_799.000_499_964, 0, 0.0005, 0.9995, 0.999_999_9, 86_399.999,
            951_782_400.9995 - 978_307_200, 4_107_542_399.999 - 978_307_200, 253_402_300_799.999 - 978_307_200,
            253_402_300_800 - 978_307_200, -978_307_201, 1e12,
        ]
        for interval in edges {
            let date = Date(timeIntervalSinceReferenceDate: interval)
            #expect(date.rfc3339 == date.formatted(Self.style), "\(interval)")
        }
    }

    @Test func matchesFoundationOnRandomDates() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let interval: TimeInterval =
                Bool.random(using: &generator)
                ? Double.random(in: -978_307_200...3_000_000_000, using: &generator)
                : Double(Int.random(in: 700_000_000...900_000_000, using: &generator))
                    + Double(Int.random(in: 0...999, using: &generator)) / 1000
                    + Double.random(in: -1e-6...1e-6, using: &generator)
            let date = Date(timeIntervalSinceReferenceDate: interval)
            #expect(date.rfc3339 == date.formatted(Self.style), "\(interval)")
        }
    }
}
