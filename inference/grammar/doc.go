// Package grammar constrains generation to JSON: OpenAI's response_format
// json_object (any object) and json_schema (output that parses and validates
// against the schema), by masking the tokens that would break the format.
//
// A schema compiles to a Grammar (immutable, shared); each sequence holds a
// State. Per decoding step:
//
//	st.Mask(vocab, allowed)                         // allowed[i]: token i keeps the output valid
//	tok, _ := sampler.SampleAllowed(logits, hist, allowed)
//	if vocab.IsEOS(tok) || ... { stop }
//	st.Advance(vocab.Token(tok))
//	if st.Finished() { stop }                       // nothing may follow: no need to sample EOS
//
// The matcher is a byte-level pushdown automaton (machine.go), and Mask walks
// a byte trie of the vocabulary with it, pruning every subtree at the first
// byte it refuses; inside strings, plain tokens come from a precomputed table
// so only tokens holding quotes, backslashes or control bytes are walked.
//
// Output policy, chosen so a model cannot loop or emit what consumers reject:
//   - whitespace goes only where a pretty-printer puts it: one space after
//     ':'; after '{', '[' or ',' and before '}' or ']', one space or a
//     newline followed by at most 4 spaces per open container (a 2- or
//     4-space indent; at most 64); none before ':' or ',', none before or
//     after the value, never tabs or blank lines;
//   - numbers have at most 16 integer and 16 fraction digits and a two-digit
//     exponent (always within float64 range); integers have no fraction or
//     exponent; strings must be valid UTF-8 (no overlongs or surrogates);
//   - object keys are written exactly as encoding/json would encode them;
//     declared properties come in schema order, optional ones may be
//     skipped, undeclared ones are never generated;
//   - values nest at most 64 deep.
//
// Vocab takes each token's raw bytes: byte-level BPE tokens decoded from their
// printable stand-ins, SentencePiece "▁" as a space and <0xNN> byte tokens as
// that byte. Special tokens must be given as empty byte strings.
package grammar
