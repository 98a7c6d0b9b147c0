/// Elements handed out first in, first out, from an array whose taken front is dropped only once all of it has been
/// taken: a reader that takes one element at a time pays no `removeFirst` shift, and the array keeps its storage
/// for the next batch. For the short queues between a producer and its one consumer (a transfer's parts, a call's
/// decoded events).
public struct ConsumingQueue<Element> {
    @usableFromInline var elements: [Element] = []
    @usableFromInline var next = 0

    /// An empty queue.
    @inlinable public init() {}

    /// Adds an element at the end.
    @inlinable public mutating func append(_ element: Element) {
        elements.append(element)
    }

    /// Takes the first element not yet taken, or `nil` when there is none.
    @inlinable public mutating func takeFirst() -> Element? {
        guard next < elements.count else { return nil }
        let element = elements[next]
        next += 1
        if next == elements.count {
            elements.removeAll(keepingCapacity: true)
            next = 0
        }
        return element
    }

    /// Drops every element, storage included.
    @inlinable public mutating func removeAll() {
        elements = []
        next = 0
    }
}

extension ConsumingQueue: Sendable where Element: Sendable {}
