package manage

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/impetusllm/impetus/caddymodule/openai"
)

// schemaGen builds JSON Schemas (OpenAPI 3.1 dialect) from Go types, so the
// spec follows the types the handlers encode and decode. Named structs go to
// components/schemas and are referenced. Types that marshal themselves
// (json.Marshaler) have no reflectable wire shape: their schemas come from
// wireSchemas, written from their MarshalJSON methods and checked against
// real encodings by the tests.
type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
	err   error
}

func newSchemaGen() *schemaGen {
	return &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
}

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
	marshalerType  = reflect.TypeFor[json.Marshaler]()
)

// skipFields are Go fields that are not part of the wire format, and
// fieldSchemas the request fields whose wire form is a union the Go type
// flattens (decoders accept both forms).
var (
	skipFields = map[string]bool{"Message.Parts": true, "Message.HasContent": true}

	fieldSchemas = map[string]func(g *schemaGen) map[string]any{
		"Message.Content": func(g *schemaGen) map[string]any {
			return map[string]any{"description": "Text, or an array of content parts; null for an assistant message with tool calls.",
				"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "array", "items": g.ref("ContentPart", contentPartSchema)}, map[string]any{"type": "null"}}}
		},
		"Sampling.Stop": func(*schemaGen) map[string]any {
			return map[string]any{"description": "Up to 4 stop sequences.", "anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "array", "items": map[string]any{"type": "string"}}, map[string]any{"type": "null"}}}
		},
		"Sampling.LogitBias": func(*schemaGen) map[string]any {
			return map[string]any{"description": "Token id (as a string key) to bias in -100..100.", "type": []any{"object", "null"}, "additionalProperties": map[string]any{"type": "number", "minimum": -100, "maximum": 100}}
		},
	}

	// typeSchemas replace a Go type's reflected schema with its wire union.
	typeSchemas = map[reflect.Type]func(g *schemaGen) map[string]any{
		reflect.TypeFor[openai.Prompt](): func(*schemaGen) map[string]any {
			return map[string]any{"description": "A string, an array of strings, an array of token ids, or an array of token-id arrays.",
				"anyOf": []any{
					map[string]any{"type": "string"},
					map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
					map[string]any{"type": "array", "items": map[string]any{"type": "integer"}},
					map[string]any{"type": "array", "items": map[string]any{"type": "array", "items": map[string]any{"type": "integer"}}},
				}}
		},
		reflect.TypeFor[openai.ToolChoice](): func(g *schemaGen) map[string]any {
			return map[string]any{"anyOf": []any{
				map[string]any{"type": "string", "enum": []any{"none", "auto", "required"}},
				map[string]any{"type": "object", "required": []any{"type", "function"}, "properties": map[string]any{
					"type":     map[string]any{"const": "function"},
					"function": map[string]any{"type": "object", "required": []any{"name"}, "properties": map[string]any{"name": map[string]any{"type": "string"}}},
				}},
			}}
		},
	}

	// requiredFields lists the required members of request types, whose Go
	// fields carry no json tags.
	requiredFields = map[string][]string{
		"ChatRequest": {"model", "messages"}, "CompletionRequest": {"model", "prompt"}, "EmbeddingRequest": {"model", "input"}, "Message": {"role"},
		"Tool": {"type", "function"}, "FunctionDef": {"name"}, "ResponseFormat": {"type"}, "JSONSchema": {"name"},
	}
)

func contentPartSchema(*schemaGen) map[string]any {
	return map[string]any{"type": "object", "required": []any{"type"}, "additionalProperties": true, "properties": map[string]any{
		"type": map[string]any{"type": "string", "enum": []any{"text", "refusal", "image_url", "input_audio", "file"}},
		"text": map[string]any{"type": "string"},
	}}
}

// ref registers a hand-written component schema once and references it.
func (g *schemaGen) ref(name string, build func(*schemaGen) map[string]any) map[string]any {
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil // placeholder against recursion
		g.defs[name] = build(g)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// Of returns the schema of v's type.
func (g *schemaGen) Of(v any) map[string]any { return g.schema(reflect.TypeOf(v)) }

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if f, ok := typeSchemas[t]; ok {
		return f(g)
	}
	switch t {
	case rawMessageType:
		return map[string]any{"description": "Any JSON value."}
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if t.Kind() != reflect.Pointer && (t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType)) {
		name := t.Name()
		build, ok := wireSchemas[name]
		if !ok {
			if g.err == nil {
				g.err = fmt.Errorf("type %s marshals itself but has no wire schema", t)
			}
			return map[string]any{}
		}
		if name == "Error" {
			name = "OpenAIError" // the openai package's error envelope
		}
		return g.ref(name, build)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(g.schema(t.Elem()))
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice:
		return map[string]any{"type": []any{"array", "null"}, "items": g.schema(t.Elem())}
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": g.schema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		name := g.nameOf(t)
		if _, ok := g.defs[name]; !ok {
			g.defs[name] = nil
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	if g.err == nil {
		g.err = fmt.Errorf("no schema for kind %s (%s)", t.Kind(), t)
	}
	return map[string]any{}
}

// nameOf names a struct's component: its Go name, exported, prefixed by its
// package when another package already used the name.
func (g *schemaGen) nameOf(t reflect.Type) string {
	if n, ok := g.names[t]; ok {
		return n
	}
	n := t.Name()
	if r := []rune(n); len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
		n = string(r)
	}
	for other, on := range g.names {
		if on == n && other != t {
			pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
			n = strings.ToUpper(pkg[:1]) + pkg[1:] + n
			break
		}
	}
	g.names[t] = n
	return n
}

func nullable(s map[string]any) map[string]any {
	if typ, ok := s["type"].(string); ok {
		c := map[string]any{}
		for k, v := range s {
			c[k] = v
		}
		c["type"] = []any{typ, "null"}
		return c
	}
	if _, ok := s["type"].([]any); ok {
		return s // already nullable (slices, maps)
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// object reflects a struct. Tagged structs follow their json tags (fields
// without omitempty are required); untagged request structs use snake_case
// names, as their decoders do, and requiredFields.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	tagged := hasJSONTags(t)
	g.fields(t, tagged, props, &required)
	if !tagged {
		required = append(required, requiredFields[t.Name()]...)
	}
	sort.Strings(required)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		r := make([]any, len(required))
		for i, s := range required {
			r[i] = s
		}
		out["required"] = r
	}
	return out
}

func (g *schemaGen) fields(t reflect.Type, tagged bool, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if f.Anonymous && !hasTag && f.Type.Kind() == reflect.Struct {
			g.fields(f.Type, tagged && hasJSONTags(f.Type), props, required)
			continue
		}
		if !f.IsExported() || skipFields[t.Name()+"."+f.Name] {
			continue
		}
		if name == "" {
			name = f.Name
			if !tagged {
				name = snakeCase(f.Name)
			}
		}
		if build, ok := fieldSchemas[t.Name()+"."+f.Name]; ok {
			props[name] = build(g)
		} else {
			props[name] = g.schema(f.Type)
		}
		if tagged && !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			*required = append(*required, name)
		}
	}
}

func hasJSONTags(t reflect.Type) bool {
	for i := range t.NumField() {
		if _, ok := t.Field(i).Tag.Lookup("json"); ok {
			return true
		}
	}
	return false
}

// snakeCase turns a Go field name into the wire name: MaxCompletionTokens →
// max_completion_tokens, ToolCallID → tool_call_id, JSONSchema → json_schema.
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
