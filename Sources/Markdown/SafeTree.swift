private import CCmarkGFM
import HTML

/// Rewrites a parsed cmark-gfm tree so that its HTML is safe to show: raw HTML becomes text, links are checked and
/// get `rel`, images become links, headings move down, bare web addresses become links.
///
/// The walk uses cmark's iterator (no recursion, so 10,000 nested emphases are no risk) and only collects nodes;
/// the tree is changed after the walk, which cmark's iterator requires.
enum SafeTree {
    static func apply(to document: OpaquePointer, headingOffset: Int) {
        var htmlBlocks: [OpaquePointer] = []
        var htmlInlines: [OpaquePointer] = []
        var links: [OpaquePointer] = []
        var images: [(node: OpaquePointer, insideLink: Bool)] = []
        var texts: [OpaquePointer] = []
        var headings: [OpaquePointer] = []

        guard let iterator = cmark_iter_new(document) else { return }
        var linkDepth = 0
        while true {
            let event = cmark_iter_next(iterator)
            if event == CMARK_EVENT_DONE { break }
            guard let node = cmark_iter_get_node(iterator) else { continue }
            let type = cmark_node_get_type(node)
            let entering = event == CMARK_EVENT_ENTER
            switch type {
            case CMARK_NODE_LINK, CMARK_NODE_IMAGE:
                if entering {
                    if type == CMARK_NODE_LINK { links.append(node) } else { images.append((node, linkDepth > 0)) }
                    linkDepth += 1
                } else {
                    linkDepth -= 1
                }
            case CMARK_NODE_TEXT where linkDepth == 0:
                texts.append(node)
            case CMARK_NODE_HTML_INLINE:
                htmlInlines.append(node)
            case CMARK_NODE_HTML_BLOCK:
                htmlBlocks.append(node)
            case CMARK_NODE_HEADING where entering:
                headings.append(node)
            default:
                break
            }
        }
        cmark_iter_free(iterator)

        // Nodes freed with a subtree cmark would not let go of (a child it refused to move): any of them still on a
        // list below is skipped, never read again.
        var freed = Set<OpaquePointer>()
        for heading in headings {
            let level = Int(cmark_node_get_heading_level(heading))
            _ = cmark_node_set_heading_level(heading, Int32(min(6, max(1, level + headingOffset))))
        }
        for node in htmlInlines where !freed.contains(node) {
            if let text = newText(literal(of: node)) { replace(node, with: text, freed: &freed) }
        }
        for node in htmlBlocks where !freed.contains(node) {
            var source = literal(of: node)
            while source.last == "\n" { source.removeLast() }
            guard let paragraph = cmark_node_new(CMARK_NODE_PARAGRAPH) else { continue }
            if let text = newText(source), cmark_node_append_child(paragraph, text) == 0 { cmark_node_free(text) }
            replace(node, with: paragraph, freed: &freed)
        }
        // Images first: one inside a link is unwrapped before the link moves its children.
        for (image, insideLink) in images where !freed.contains(image) {
            let url = LinkPolicy.allowedDestination(string(cmark_node_get_url(image)))
            guard !insideLink, let url else {
                unwrap(image, freed: &freed)
                continue
            }
            let hasLabel = cmark_node_first_child(image) != nil
            guard
                let anchor = insertAnchor(
                    before: image, href: url, title: string(cmark_node_get_title(image)), className: "image-link",
                    freed: &freed)
            else {
                unwrap(image, freed: &freed)
                continue
            }
            moveChildren(of: image, into: anchor)
            if !hasLabel, let label = newText(url), cmark_node_append_child(anchor, label) == 0 {
                cmark_node_free(label)
            }
            free(image, freed: &freed)
        }
        for link in links where !freed.contains(link) {
            guard let url = LinkPolicy.allowedDestination(string(cmark_node_get_url(link))) else {
                unwrap(link, freed: &freed)
                continue
            }
            guard
                let anchor = insertAnchor(
                    before: link, href: url, title: string(cmark_node_get_title(link)), className: nil, freed: &freed)
            else {
                unwrap(link, freed: &freed)
                continue
            }
            moveChildren(of: link, into: anchor)
            free(link, freed: &freed)
        }
        for text in texts where !freed.contains(text) {
            autolink(text, freed: &freed)
        }
    }

    /// Turns the web addresses in a text node into links (GFM's extended autolinks: `www.`, `http://`, `https://`).
    private static func autolink(_ node: OpaquePointer, freed: inout Set<OpaquePointer>) {
        guard let pointer = cmark_node_get_literal(node) else { return }
        let bytes = Array(String(cString: pointer).utf8)
        let matches = Autolinker.matches(in: bytes)
        guard !matches.isEmpty else { return }
        var position = 0
        for match in matches {
            if match.range.lowerBound > position,
                let before = newText(String(decoding: bytes[position..<match.range.lowerBound], as: UTF8.self))
            {
                insert(before, before: node, freed: &freed)
            }
            let label = newText(String(decoding: bytes[match.range], as: UTF8.self))
            if let label {
                if let anchor = insertAnchor(before: node, href: match.url, title: "", className: nil, freed: &freed) {
                    if cmark_node_append_child(anchor, label) == 0 { cmark_node_free(label) }
                } else {
                    insert(label, before: node, freed: &freed)
                }
            }
            position = match.range.upperBound
        }
        if position < bytes.count, let after = newText(String(decoding: bytes[position...], as: UTF8.self)) {
            insert(after, before: node, freed: &freed)
        }
        cmark_node_free(node)
    }

    /// Puts an empty link anchor before `node`, to be filled with the link's label.
    ///
    /// The anchor is a custom inline node that renders as `<a href=…>` with the title and class given. A GFM table
    /// cell takes no custom node (its extension lists the inline types it accepts), so there the anchor is a plain
    /// cmark link to the checked address instead, without the class. Either way ``CmarkDocument`` adds the `rel`
    /// to every anchor of the rendered HTML.
    /// - Returns: the anchor, or `nil` if neither could be made or put there (the caller keeps the label as text).
    private static func insertAnchor(
        before node: OpaquePointer, href: String, title: String, className: String?, freed: inout Set<OpaquePointer>
    ) -> OpaquePointer? {
        if let custom = cmark_node_new(CMARK_NODE_CUSTOM_INLINE) {
            var open = "<a href=\"\(LinkPolicy.escapeHref(href))\""
            if !title.isEmpty { open += " title=\"\(HTML.escape(title))\"" }
            if let className { open += " class=\"\(className)\"" }
            open += ">"
            _ = cmark_node_set_on_enter(custom, open)
            _ = cmark_node_set_on_exit(custom, "</a>")
            if cmark_node_insert_before(node, custom) != 0 { return custom }
            cmark_node_free(custom)
        }
        guard let link = cmark_node_new(CMARK_NODE_LINK) else { return nil }
        _ = cmark_node_set_url(link, href)
        _ = cmark_node_set_title(link, title)
        if cmark_node_insert_before(node, link) != 0 { return link }
        free(link, freed: &freed)
        return nil
    }

    private static func newText(_ literal: String) -> OpaquePointer? {
        guard let node = cmark_node_new(CMARK_NODE_TEXT) else { return nil }
        _ = cmark_node_set_literal(node, literal)
        return node
    }

    /// Puts `replacement` where `node` was, and frees `node` (and whatever children it still has). Should cmark
    /// refuse the replacement there, both go: nothing leaks and nothing unchecked stays.
    private static func replace(_ node: OpaquePointer, with replacement: OpaquePointer, freed: inout Set<OpaquePointer>)
    {
        insert(replacement, before: node, freed: &freed)
        free(node, freed: &freed)
    }

    /// Frees a node with what is left under it, noting every node freed.
    private static func free(_ node: OpaquePointer, freed: inout Set<OpaquePointer>) {
        if let iterator = cmark_iter_new(node) {
            while cmark_iter_next(iterator) != CMARK_EVENT_DONE {
                if let inner = cmark_iter_get_node(iterator) { freed.insert(inner) }
            }
            cmark_iter_free(iterator)
        }
        freed.insert(node)
        cmark_node_free(node)
    }

    /// Inserts a new node before another, or frees it if cmark refuses it there (a table cell takes no link
    /// anchor), with what was moved into it: those are noted as freed.
    private static func insert(
        _ newNode: OpaquePointer, before node: OpaquePointer, freed: inout Set<OpaquePointer>
    ) {
        if cmark_node_insert_before(node, newNode) == 0 { free(newNode, freed: &freed) }
    }

    /// Removes a node but keeps its children in its place (a link whose target was refused keeps its text).
    private static func unwrap(_ node: OpaquePointer, freed: inout Set<OpaquePointer>) {
        while let child = cmark_node_first_child(node) {
            // Children of an inline node are inlines, which fit wherever it was; stop rather than loop if not (the
            // children cmark refused go with the node).
            guard cmark_node_insert_before(node, child) != 0 else { break }
        }
        free(node, freed: &freed)
    }

    private static func moveChildren(of node: OpaquePointer, into target: OpaquePointer) {
        while let child = cmark_node_first_child(node) {
            guard cmark_node_append_child(target, child) != 0 else { break }
        }
    }

    private static func literal(of node: OpaquePointer) -> String {
        string(cmark_node_get_literal(node))
    }

    private static func string(_ pointer: UnsafePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }
}
