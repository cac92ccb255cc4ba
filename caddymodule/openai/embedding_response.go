package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
)

// ObjectEmbedding is the object name of one vector of an embeddings response.
const ObjectEmbedding = "embedding"

// EmbeddingList is the POST /v1/embeddings response:
// {"object":"list","data":[{"object":"embedding","index":i,"embedding":…}],"model":…,"usage":{…}}.
type EmbeddingList struct {
	Model string
	// Vectors are the embeddings in input order; data[i].index is i.
	Vectors [][]float32
	// Base64 writes each vector as base64 of its little-endian float32
	// bytes (encoding_format "base64"), else as an array of numbers.
	Base64       bool
	PromptTokens int
}

// MarshalJSON writes the OpenAI shape; usage has prompt_tokens and
// total_tokens only, as OpenAI's embeddings usage does.
func (l EmbeddingList) MarshalJSON() ([]byte, error) {
	type item struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	}
	data := make([]item, len(l.Vectors))
	for i, v := range l.Vectors {
		var raw []byte
		var err error
		if l.Base64 {
			raw, err = json.Marshal(EncodeEmbeddingBase64(v))
		} else {
			raw, err = json.Marshal(v)
		}
		if err != nil {
			return nil, err
		}
		data[i] = item{ObjectEmbedding, i, raw}
	}
	type usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	}
	return marshal(struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  usage  `json:"usage"`
	}{ObjectList, data, l.Model, usage{l.PromptTokens, l.PromptTokens}})
}

// EncodeEmbeddingBase64 is encoding_format "base64": the vector's
// little-endian float32 bytes in standard base64, which the OpenAI SDKs
// decode into a Float32Array / numpy float32 array.
func EncodeEmbeddingBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
