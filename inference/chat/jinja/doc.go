// Package jinja is a small Jinja2 interpreter for Hugging Face chat
// templates, written to render byte for byte what transformers renders:
// Jinja2 with trim_blocks, lstrip_blocks and loop controls, Python value
// semantics (insertion-ordered dicts, Python str()/repr() of values,
// Undefined that prints empty), transformers' tojson (json.dumps with
// ensure_ascii=False, ", "/": " separators, indent, key order kept) and the
// raise_exception and strftime_now globals.
//
// gonja v2 (v2.9.1) was not used: it iterates and prints Go maps with sorted
// keys, its ordered Dict type is handled in only some code paths (Value.Items
// and Value.String, for instance, look at Go maps alone), and its tojson and
// str.replace differ from Python, so matching transformers would have meant
// patching it in many places.
//
// Supported: {{ }}, {% if/elif/else %}, {% for %} (tuple targets, "if"
// filter, else, loop.index/index0/revindex/revindex0/first/last/length/
// previtem/nextitem/cycle), {% set %} (names, tuples, namespace attributes,
// block form), {% macro %} with defaults, {% break %}/{% continue %},
// transformers' {% generation %}; literals, tuples, lists, dicts, slicing
// with steps, conditional expressions, the usual operators with Python
// semantics; the filters and tests chat templates use (see builtins.go);
// Python str methods (strip/lstrip/rstrip/split/rsplit/replace/startswith/
// endswith/upper/lower/title/capitalize/join/find/count/splitlines) and
// dict methods (get/items/keys/values); globals namespace, range, dict,
// raise_exception, strftime_now.
//
// Not supported (a parse or render error, never silent output): include,
// import, extends, call, filter blocks, raw, recursive loops, "%" string
// formatting, and filters outside builtins.go. Known gaps: dict keys must be
// strings; integers beyond int64 become floats; str.upper/lower use Go's
// Unicode case mapping (Python's special cases such as ß differ); error
// texts other than raise_exception's follow Python's wording only loosely.
package jinja
