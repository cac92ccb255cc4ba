package grammar

import (
	"encoding/json"
	"fmt"
	"sort"
)

// CheckStrictSchema enforces OpenAI's structured-output rules for strict
// schemas: the root is an object; every object schema lists all of its
// properties in required and sets additionalProperties to false. Nested
// schemas are checked under properties, items, anyOf, allOf, $defs and
// definitions. (Keyword support is CompileSchema's business: it refuses
// what it cannot enforce.)
func CheckStrictSchema(schema json.RawMessage) error {
	var root any
	if err := json.Unmarshal(schema, &root); err != nil {
		return fmt.Errorf("schema is not valid JSON: %v", err)
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return fmt.Errorf("the schema must be a JSON object")
	}
	if t, _ := obj["type"].(string); t != "object" {
		return fmt.Errorf("the root schema must have type \"object\"")
	}
	return strictWalk(obj, "#", 0)
}

func strictWalk(v any, path string, depth int) error {
	if depth > 64 {
		return fmt.Errorf("schema nests more than 64 levels at %s", path)
	}
	s, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	props, hasProps := s["properties"].(map[string]any)
	isObject := hasProps || s["type"] == "object"
	if list, ok := s["type"].([]any); ok {
		for _, t := range list {
			if t == "object" {
				isObject = true
			}
		}
	}
	if isObject {
		if ap, ok := s["additionalProperties"].(bool); !ok || ap {
			return fmt.Errorf("'additionalProperties' is required to be supplied and to be false at %s", path)
		}
		req := map[string]bool{}
		if list, ok := s["required"].([]any); ok {
			for _, r := range list {
				if name, ok := r.(string); ok {
					req[name] = true
				}
			}
		}
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if !req[name] {
				return fmt.Errorf("'required' at %s must list every property; missing %q", path, name)
			}
		}
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "properties", "$defs", "definitions":
			m, _ := s[k].(map[string]any)
			names := make([]string, 0, len(m))
			for name := range m {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if err := strictWalk(m[name], path+"/"+k+"/"+name, depth+1); err != nil {
					return err
				}
			}
		case "items":
			if err := strictWalk(s[k], path+"/items", depth+1); err != nil {
				return err
			}
		case "anyOf", "allOf":
			list, _ := s[k].([]any)
			for i, sub := range list {
				if err := strictWalk(sub, fmt.Sprintf("%s/%s/%d", path, k, i), depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
