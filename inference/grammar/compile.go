package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Limits on untrusted schemas.
const (
	maxSchemaDepth = 64
	maxSchemaNodes = 10000
	maxEnumValues  = 1000
)

// CompileJSONObject returns the grammar of OpenAI's json_object mode: any
// JSON object.
func CompileJSONObject() (*Grammar, error) {
	return &Grammar{root: anyObject}, nil
}

// anyValue accepts any JSON value; anyObject and anyArray nest it.
var (
	anyValue  = &node{kind: kindAnyOf}
	anyObject = &node{kind: kindObject, free: true, extra: anyValue}
	anyArray  = &node{kind: kindArray, items: anyValue, maxItems: -1}
)

func init() {
	anyValue.alts = []*node{
		anyObject, anyArray,
		{kind: kindString, maxLen: -1},
		{kind: kindNumber},
		{kind: kindEnum, lits: [][]byte{[]byte("false"), []byte("null"), []byte("true")}},
	}
}

func literal(s string) *node { return &node{kind: kindLiteral, lit: []byte(s)} }

// CompileSchema compiles a JSON Schema for json_schema response formats. The
// output is then guaranteed to parse and to validate against the schema.
//
// Supported: type (one or a list), properties, required, additionalProperties
// (false, true or a schema), items, minItems, maxItems, minLength, maxLength,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum (numeric, draft 6+),
// enum, const, anyOf, allOf with a single subschema, uniqueItems false, and
// local $ref into $defs/definitions (recursion allowed through objects and
// arrays). A bounded number is written without exponent, with at most 10
// integer and 8 fraction digits. Annotations (title, description,
// default, examples, format, $schema, $id, $comment, ...) are ignored, as
// JSON Schema permits. Any other keyword is an error naming it, because
// silently ignoring an assertion could produce output the schema rejects.
//
// Properties are written in schema order; optional ones may be skipped, and
// undeclared properties are never generated (the output stays valid).
func CompileSchema(schema json.RawMessage) (*Grammar, error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	root, err := decodeOrdered(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("grammar: schema is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("grammar: schema is not valid JSON: trailing data after the schema")
	}
	c := &compiler{root: root, refs: map[string]*node{}}
	n, err := c.compile(root, "", 0)
	if err != nil {
		return nil, err
	}
	if err := checkAnyOfCycles(n); err != nil {
		return nil, err
	}
	return &Grammar{root: n}, nil
}

// object is a decoded JSON object that remembers its key order, which
// decides the order properties are generated in.
type object struct {
	keys []string
	vals map[string]any
}

// MarshalJSON writes the object with its keys in their original order.
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := encode(k)
		if err != nil {
			return nil, err
		}
		vb, err := encode(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encode writes v as compact JSON without HTML escaping: the exact bytes an
// enum or const value must be generated as.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func decodeOrdered(dec *json.Decoder, depth int) (any, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxSchemaDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := o.vals[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.keys = append(o.keys, k)
				o.vals[k] = v
			}
			_, err := dec.Token()
			return o, err
		case '[':
			var a []any
			for dec.More() {
				v, err := decodeOrdered(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// keyword classes.
var (
	annotations = map[string]bool{
		"title": true, "description": true, "default": true, "examples": true, "format": true,
		"$schema": true, "$id": true, "$comment": true, "deprecated": true, "readOnly": true,
		"writeOnly": true, "$defs": true, "definitions": true, "contentMediaType": true,
		"contentEncoding": true, "$anchor": true,
	}
	supported = map[string]bool{
		"type": true, "properties": true, "required": true, "additionalProperties": true,
		"items": true, "minItems": true, "maxItems": true, "minLength": true, "maxLength": true,
		"enum": true, "const": true, "anyOf": true, "$ref": true, "allOf": true, "uniqueItems": true,
		"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
	}
)

type compiler struct {
	root  any
	refs  map[string]*node
	nodes int
}

func (c *compiler) newNode(n node) (*node, error) {
	if c.nodes++; c.nodes > maxSchemaNodes {
		return nil, fmt.Errorf("grammar: schema has more than %d subschemas", maxSchemaNodes)
	}
	return &n, nil
}

func at(path string) string {
	if path == "" {
		return "the schema root"
	}
	return path
}

func (c *compiler) compile(v any, path string, depth int) (*node, error) {
	return c.compileChain(v, path, depth, nil)
}

// compileChain compiles v, which was reached by following the $refs in chain
// with no value in between (to catch a $ref that resolves to itself).
func (c *compiler) compileChain(v any, path string, depth int, chain []string) (*node, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("grammar: schema nested deeper than %d at %s", maxSchemaDepth, at(path))
	}
	switch s := v.(type) {
	case bool:
		if s {
			return anyValue, nil
		}
		return nil, fmt.Errorf("grammar: schema false at %s accepts no value", at(path))
	case *object:
		return c.compileObject(s, path, depth, chain)
	}
	return nil, fmt.Errorf("grammar: schema at %s must be an object or a boolean", at(path))
}

func (c *compiler) compileObject(s *object, path string, depth int, chain []string) (*node, error) {
	assertions := 0
	for _, k := range s.keys {
		switch {
		case supported[k]:
			assertions++
		case annotations[k]:
		default:
			return nil, fmt.Errorf("grammar: unsupported JSON Schema keyword %q at %s", k, at(path))
		}
	}
	// uniqueItems false asserts nothing; true cannot be guaranteed.
	if u, ok := s.vals["uniqueItems"]; ok {
		if b, isBool := u.(bool); !isBool || b {
			return nil, fmt.Errorf("grammar: uniqueItems at %s is not supported (only false)", at(path))
		}
		assertions--
	}
	// allOf with one subschema (how pydantic attaches a description to a
	// $ref) is that subschema; intersections of several are not supported.
	if all, ok := s.vals["allOf"]; ok {
		list, isList := all.([]any)
		if !isList || len(list) != 1 {
			return nil, fmt.Errorf("grammar: allOf at %s is supported only with a single subschema", at(path))
		}
		if assertions > 1 {
			return nil, fmt.Errorf("grammar: allOf beside other keywords at %s is not supported", at(path))
		}
		return c.compileChain(list[0], path+"/allOf/0", depth+1, chain)
	}
	if ref, ok := s.vals["$ref"]; ok {
		if assertions > 1 {
			return nil, fmt.Errorf("grammar: $ref beside other keywords at %s is not supported", at(path))
		}
		return c.ref(ref, path, depth, chain)
	}
	if alts, ok := s.vals["anyOf"]; ok {
		if assertions > 1 {
			return nil, fmt.Errorf("grammar: anyOf beside other keywords at %s is not supported", at(path))
		}
		list, ok := alts.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("grammar: anyOf at %s must be a non-empty array", at(path))
		}
		n, err := c.newNode(node{kind: kindAnyOf})
		if err != nil {
			return nil, err
		}
		for i, a := range list {
			alt, err := c.compile(a, fmt.Sprintf("%s/anyOf/%d", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			n.alts = append(n.alts, alt)
		}
		return n, nil
	}

	types, err := schemaTypes(s, path)
	if err != nil {
		return nil, err
	}
	if v, ok := s.vals["const"]; ok {
		return c.literals([]any{v}, types, path+"/const")
	}
	if v, ok := s.vals["enum"]; ok {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("grammar: enum at %s must be a non-empty array", at(path))
		}
		if len(list) > maxEnumValues {
			return nil, fmt.Errorf("grammar: enum at %s has more than %d values", at(path), maxEnumValues)
		}
		return c.literals(list, types, path+"/enum")
	}
	if types == nil {
		types = inferTypes(s)
	}
	if types == nil {
		return anyValue, nil
	}
	var alts []*node
	for _, t := range types {
		n, err := c.compileType(s, t, path, depth)
		if err != nil {
			return nil, err
		}
		alts = append(alts, n)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return c.newNode(node{kind: kindAnyOf, alts: alts})
}

var typeNames = []string{"object", "array", "string", "number", "integer", "boolean", "null"}

// schemaTypes returns the declared types, or nil when type is absent.
func schemaTypes(s *object, path string) ([]string, error) {
	v, ok := s.vals["type"]
	if !ok {
		return nil, nil
	}
	var list []any
	switch t := v.(type) {
	case string:
		list = []any{t}
	case []any:
		list = t
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("grammar: type at %s must be a type name or a non-empty array of them", at(path))
	}
	var out []string
	for _, x := range list {
		name, ok := x.(string)
		if !ok || !slices.Contains(typeNames, name) {
			return nil, fmt.Errorf("grammar: unknown type %v at %s", x, at(path))
		}
		if slices.Contains(out, name) {
			return nil, fmt.Errorf("grammar: type %q listed twice at %s", name, at(path))
		}
		out = append(out, name)
	}
	return out, nil
}

// inferTypes guesses the type of an untyped schema from its keywords;
// nil means any value.
func inferTypes(s *object) []string {
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := s.vals[k]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("properties", "required", "additionalProperties"):
		return []string{"object"}
	case has("items", "minItems", "maxItems"):
		return []string{"array"}
	case has("minLength", "maxLength"):
		return []string{"string"}
	}
	return nil
}

func (c *compiler) compileType(s *object, t, path string, depth int) (*node, error) {
	switch t {
	case "object":
		return c.compileObjectType(s, path, depth)
	case "array":
		n, err := c.newNode(node{kind: kindArray, items: anyValue, maxItems: -1})
		if err != nil {
			return nil, err
		}
		if items, ok := s.vals["items"]; ok {
			if b, ok := items.(bool); ok && !b {
				n.maxItems = 0
			} else if n.items, err = c.compile(items, path+"/items", depth+1); err != nil {
				return nil, err
			}
		}
		if n.minItems, err = count(s, "minItems", 0, path); err != nil {
			return nil, err
		}
		maxItems, err := count(s, "maxItems", -1, path)
		if err != nil {
			return nil, err
		}
		if maxItems >= 0 {
			if n.maxItems != 0 {
				n.maxItems = maxItems
			}
		}
		if n.maxItems >= 0 && n.minItems > n.maxItems {
			return nil, fmt.Errorf("grammar: minItems %d exceeds the items allowed (%d) at %s", n.minItems, n.maxItems, at(path))
		}
		return n, nil
	case "string":
		n, err := c.newNode(node{kind: kindString})
		if err != nil {
			return nil, err
		}
		if n.minLen, err = count(s, "minLength", 0, path); err != nil {
			return nil, err
		}
		if n.maxLen, err = count(s, "maxLength", -1, path); err != nil {
			return nil, err
		}
		if n.maxLen >= 0 && n.minLen > n.maxLen {
			return nil, fmt.Errorf("grammar: minLength %d exceeds maxLength %d at %s", n.minLen, n.maxLen, at(path))
		}
		return n, nil
	case "number", "integer":
		k := kindNumber
		if t == "integer" {
			k = kindInteger
		}
		n, err := c.newNode(node{kind: k})
		if err != nil {
			return nil, err
		}
		return n, n.setBounds(s, path)
	case "boolean":
		return c.newNode(node{kind: kindEnum, lits: [][]byte{[]byte("false"), []byte("true")}})
	case "null":
		return literal("null"), nil
	}
	return nil, fmt.Errorf("grammar: unknown type %q at %s", t, at(path))
}

func (c *compiler) compileObjectType(s *object, path string, depth int) (*node, error) {
	n, err := c.newNode(node{kind: kindObject})
	if err != nil {
		return nil, err
	}
	extra := anyValue
	closed := false
	if ap, ok := s.vals["additionalProperties"]; ok {
		if b, ok := ap.(bool); ok {
			closed = !b
		} else if extra, err = c.compile(ap, path+"/additionalProperties", depth+1); err != nil {
			return nil, err
		}
	}
	var required []string
	if r, ok := s.vals["required"]; ok {
		list, ok := r.([]any)
		if !ok {
			return nil, fmt.Errorf("grammar: required at %s must be an array of property names", at(path))
		}
		for _, x := range list {
			name, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("grammar: required at %s must be an array of property names", at(path))
			}
			if slices.Contains(required, name) {
				return nil, fmt.Errorf("grammar: required lists %q twice at %s", name, at(path))
			}
			required = append(required, name)
		}
	}
	props, hasProps := s.vals["properties"]
	if !hasProps && len(required) == 0 {
		// A map-like object: arbitrary keys, values of additionalProperties.
		n.free, n.noKeys, n.extra = true, closed, extra
		return n, nil
	}
	if hasProps {
		po, ok := props.(*object)
		if !ok {
			return nil, fmt.Errorf("grammar: properties at %s must be an object", at(path))
		}
		for _, name := range po.keys {
			val, err := c.compile(po.vals[name], path+"/properties/"+escapePointer(name), depth+1)
			if err != nil {
				return nil, err
			}
			if err := n.addProp(name, val, slices.Contains(required, name)); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range required {
		if slices.ContainsFunc(n.props, func(p prop) bool { return p.name == name }) {
			continue
		}
		if closed {
			return nil, fmt.Errorf("grammar: required property %q is not in properties and additionalProperties is false at %s", name, at(path))
		}
		if err := n.addProp(name, extra, true); err != nil {
			return nil, err
		}
	}
	n.nextReq = make([]int, len(n.props)+1)
	n.nextReq[len(n.props)] = len(n.props)
	for i := len(n.props) - 1; i >= 0; i-- {
		n.nextReq[i] = n.nextReq[i+1]
		if n.props[i].required {
			n.nextReq[i] = i
		}
	}
	return n, nil
}

// setBounds applies minimum, maximum and their exclusive forms. Bounds are
// kept exactly as integers in units of 1/scale (ceiling for lower bounds,
// floor for upper ones), so the matcher never rounds a value into range.
func (n *node) setBounds(s *object, path string) error {
	keys := []string{"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}
	if !slices.ContainsFunc(keys, func(k string) bool { _, ok := s.vals[k]; return ok }) {
		return nil
	}
	n.bounded = true
	n.scale = 1
	if n.kind == kindNumber {
		n.scale = pow10[boundedFrac]
	}
	limit := pow10[n.intDigits()]*n.scale - 1
	n.lo, n.hi = -limit, limit
	scale := new(big.Rat).SetInt64(n.scale)
	for _, k := range keys {
		v, ok := s.vals[k]
		if !ok {
			continue
		}
		num, ok := v.(json.Number)
		r, good := new(big.Rat).SetString(string(num))
		if !ok || !good {
			return fmt.Errorf("grammar: %s at %s must be a number", k, at(path))
		}
		r.Mul(r, scale)
		floor := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: floor for a positive denominator
		ceil := new(big.Int).Set(floor)
		if !r.IsInt() {
			ceil.Add(ceil, big.NewInt(1))
		}
		var bound *big.Int
		switch k {
		case "minimum":
			bound = ceil
		case "exclusiveMinimum":
			bound = floor.Add(floor, big.NewInt(1))
		case "maximum":
			bound = floor
		case "exclusiveMaximum":
			bound = ceil.Sub(ceil, big.NewInt(1))
		}
		b := clampInt64(bound, limit)
		if strings.HasPrefix(k, "max") || strings.HasPrefix(k, "exclusiveMax") {
			n.hi = min(n.hi, b)
		} else {
			n.lo = max(n.lo, b)
		}
	}
	if n.lo > n.hi {
		return fmt.Errorf("grammar: no value within the writable range satisfies the bounds at %s", at(path))
	}
	return nil
}

// clampInt64 returns b limited to [-(limit+1), limit+1], so an out-of-range
// bound still compares correctly against every writable value.
func clampInt64(b *big.Int, limit int64) int64 {
	if b.Cmp(big.NewInt(limit+1)) > 0 {
		return limit + 1
	}
	if b.Cmp(big.NewInt(-limit-1)) < 0 {
		return -limit - 1
	}
	return b.Int64()
}

func (n *node) addProp(name string, val *node, required bool) error {
	key, err := encode(name)
	if err != nil {
		return fmt.Errorf("grammar: property name %q: %w", name, err)
	}
	n.props = append(n.props, prop{name: name, key: &node{kind: kindLiteral, lit: key}, val: val, required: required})
	return nil
}

// count reads a non-negative integer keyword, or returns def when absent.
func count(s *object, key string, def int, path string) (int, error) {
	v, ok := s.vals[key]
	if !ok {
		return def, nil
	}
	num, ok := v.(json.Number)
	if ok {
		if i, err := strconv.ParseInt(string(num), 10, 32); err == nil && i >= 0 {
			return int(i), nil
		}
		// Integral floats such as 3.0 are integers in JSON Schema.
		if f, err := num.Float64(); err == nil && f >= 0 && f <= math.MaxInt32 && f == math.Trunc(f) {
			return int(f), nil
		}
	}
	return 0, fmt.Errorf("grammar: %s at %s must be a non-negative integer", key, at(path))
}

// literals compiles enum/const values (those of the declared types, if any)
// to exact byte strings.
func (c *compiler) literals(values []any, types []string, path string) (*node, error) {
	var lits [][]byte
	for _, v := range values {
		if types != nil && !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			continue
		}
		b, err := encode(v)
		if err != nil {
			return nil, fmt.Errorf("grammar: value at %s: %w", path, err)
		}
		lits = append(lits, b)
	}
	slices.SortFunc(lits, bytes.Compare)
	lits = slices.CompactFunc(lits, bytes.Equal)
	switch len(lits) {
	case 0:
		return nil, fmt.Errorf("grammar: no value at %s matches the declared type", path)
	case 1:
		return c.newNode(node{kind: kindLiteral, lit: lits[0]})
	}
	return c.newNode(node{kind: kindEnum, lits: lits})
}

func hasType(v any, t string) bool {
	switch x := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case json.Number:
		if t == "number" {
			return true
		}
		f, err := x.Float64()
		return t == "integer" && err == nil && f == math.Trunc(f)
	case []any:
		return t == "array"
	case *object:
		return t == "object"
	}
	return false
}

// ref resolves a local reference ("#", "#/$defs/x", "#/definitions/x" or any
// JSON pointer into the document). Each target compiles once, so recursive
// schemas become cyclic node graphs.
func (c *compiler) ref(v any, path string, depth int, chain []string) (*node, error) {
	ref, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("grammar: $ref at %s must be a string", at(path))
	}
	if n, ok := c.refs[ref]; ok {
		if slices.Contains(chain, ref) {
			return nil, fmt.Errorf("grammar: $ref %q at %s refers to itself without an enclosing value", ref, at(path))
		}
		return n, nil
	}
	if ref != "#" && !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("grammar: $ref %q at %s is not local (only #/... references are supported)", ref, at(path))
	}
	target := c.root
	if ref != "#" {
		for _, part := range strings.Split(ref[2:], "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			var next any
			switch t := target.(type) {
			case *object:
				next = t.vals[part]
			case []any:
				if i, err := strconv.Atoi(part); err == nil && i >= 0 && i < len(t) {
					next = t[i]
				}
			}
			if next == nil {
				return nil, fmt.Errorf("grammar: $ref %q at %s points to nothing", ref, at(path))
			}
			target = next
		}
	}
	// Register a placeholder first so references back to it (recursion) find
	// it, then fill it in.
	n := &node{}
	c.refs[ref] = n
	chain = append(slices.Clone(chain), ref)
	compiled, err := c.compileChain(target, strings.TrimPrefix(ref, "#"), depth+1, chain)
	if err != nil {
		return nil, err
	}
	*n = *compiled
	return n, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// checkAnyOfCycles rejects anyOf alternatives that lead back to themselves
// without an object or array in between: such a value could never start.
func checkAnyOfCycles(root *node) error {
	done := map[*node]bool{}
	onPath := map[*node]bool{}
	var follow func(n *node) error // along anyOf → alternative edges only
	follow = func(n *node) error {
		if n.kind != kindAnyOf || done[n] {
			return nil
		}
		if onPath[n] {
			return errors.New("grammar: schema recursion through anyOf/$ref never reaches a value")
		}
		onPath[n] = true
		for _, a := range n.alts {
			if err := follow(a); err != nil {
				return err
			}
		}
		onPath[n] = false
		done[n] = true
		return nil
	}
	seen := map[*node]bool{}
	todo := []*node{root}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if n == nil || seen[n] {
			continue
		}
		seen[n] = true
		if err := follow(n); err != nil {
			return err
		}
		todo = append(todo, n.alts...)
		todo = append(todo, n.extra, n.items)
		for _, p := range n.props {
			todo = append(todo, p.val)
		}
	}
	return nil
}
