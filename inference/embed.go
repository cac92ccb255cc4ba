package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/impetusllm/impetus/inference/model"
	"github.com/impetusllm/impetus/inference/tokenizer"
)

// ModelKind says what a model serves: chat (text generation) or embeddings.
type ModelKind string

const (
	KindChat      ModelKind = "chat"
	KindEmbedding ModelKind = "embedding"
)

// MaxEmbedInputs bounds the inputs of one Embed call, as OpenAI's
// /v1/embeddings does.
const MaxEmbedInputs = 2048

// Embedding errors. Each Embed error wraps one of these (or ErrModelNotFound,
// a load error, or ctx's error), so the HTTP layer can map them to 400s.
var (
	// ErrNotEmbeddingModel: Embed was asked of a chat model.
	ErrNotEmbeddingModel = errors.New("not an embedding model")
	// ErrNotChatModel: a chat or completion load was asked of an embedding model.
	ErrNotChatModel = errors.New("not a chat model")
	// ErrEmptyInput: no inputs, or an empty string or token list among them.
	ErrEmptyInput = errors.New("empty input")
	// ErrTooManyInputs: more than MaxEmbedInputs inputs.
	ErrTooManyInputs = errors.New("too many inputs")
	// ErrInputTooLong: an input has more tokens than the model takes, and
	// EmbedOptions.Truncate is off. The error is an *InputTooLongError.
	ErrInputTooLong = errors.New("input too long")
	// ErrInvalidInput: a token id outside the vocabulary, an unknown prompt
	// name, or dimensions the model cannot shorten to.
	ErrInvalidInput = errors.New("invalid embedding input")
)

// InputTooLongError names the input that is over the model's maximum.
type InputTooLongError struct {
	Index  int // position in the request's inputs
	Tokens int // its length, special tokens included
	Max    int // the model's maximum, special tokens included
}

func (e *InputTooLongError) Error() string {
	return fmt.Sprintf("input %d has %d tokens, more than the model's maximum of %d", e.Index, e.Tokens, e.Max)
}

func (e *InputTooLongError) Unwrap() error { return ErrInputTooLong }

// EmbedInputs is what to embed: either Texts (tokenized with the model's
// tokenizer, the prompt put before each) or TokenIDs (taken as they are,
// the tokenizer's [CLS]/[SEP] added around each), not both.
type EmbedInputs struct {
	Texts    []string
	TokenIDs [][]int32
}

func (in EmbedInputs) len() int { return len(in.Texts) + len(in.TokenIDs) }

// EmbedOptions adjust one Embed call; the zero value is the model's defaults.
type EmbedOptions struct {
	// Truncate cuts inputs longer than the model's maximum (keeping the
	// start, as sentence-transformers does) instead of failing with
	// ErrInputTooLong.
	Truncate bool
	// Prompt names a prompt of config_sentence_transformers.json (e.g.
	// "query") put before each text; "" uses the model's default prompt if
	// it has one. Token inputs get no prompt.
	Prompt string
	// Dimensions, when positive, asks for shortened vectors: the leading
	// Dimensions entries, scaled back to unit length. Only models trained
	// for it (Matryoshka, see model.LoadMatryoshka) may shorten; for others
	// any value other than 0 or the full size is ErrInvalidInput.
	Dimensions int
}

// EmbedResult holds one vector per input, in input order.
type EmbedResult struct {
	Model      string
	Embeddings [][]float32
	// Tokens is each input's length as the model ran it (prompt and
	// special tokens included, after any truncation).
	Tokens []int
	// PromptTokens is the sum of Tokens, for usage accounting.
	PromptTokens int
}

// EmbeddingModel is a loaded embedding model (an encoder, or a decoder
// pooling its last token) with its tokenizer and the sentence-transformers
// pooling it applies.
type EmbeddingModel struct {
	Info      LocalModel
	Tokenizer *tokenizer.Tokenizer
	Spec      model.EmbedSpec
	// MaxTokens is the longest input, special tokens included.
	MaxTokens int
	// Dim is the embedding size.
	Dim int

	net  embedBackend
	life embedLife
	jobs chan *embedJob
	quit chan struct{}
	done chan struct{}
}

// embedJob is one Embed call's sequences waiting for the worker.
type embedJob struct {
	ctx   context.Context
	seqs  [][]int32
	out   [][]float32
	err   error
	ready chan struct{}
}

// embedBatchTokens bounds the tokens of one encoder forward. A large
// request runs as several forwards, and between them the worker takes no
// lock a chat scheduler waits on, so both make progress on the shared
// kernel thread pool.
const embedBatchTokens = 4096

// Embed embeds inputs with the embedding model id, loading it if needed.
// Inputs are tokenized here; the forward passes run on the model's worker,
// which batches the sequences of concurrent calls together (bidirectional
// attention within each sequence, no KV cache kept). Errors wrap
// ErrNotEmbeddingModel, ErrEmptyInput, ErrTooManyInputs, ErrInputTooLong
// (an *InputTooLongError), ErrInvalidInput, ErrModelNotFound or ctx's error.
func (e *Engine) Embed(ctx context.Context, id string, in EmbedInputs, opts EmbedOptions) (EmbedResult, error) {
	n := in.len()
	switch {
	case len(in.Texts) > 0 && len(in.TokenIDs) > 0:
		return EmbedResult{}, fmt.Errorf("%w: texts and token ids in one request", ErrInvalidInput)
	case n == 0:
		return EmbedResult{}, fmt.Errorf("%w: no inputs", ErrEmptyInput)
	case n > MaxEmbedInputs:
		return EmbedResult{}, fmt.Errorf("%w: %d inputs, at most %d", ErrTooManyInputs, n, MaxEmbedInputs)
	}
	for i, t := range in.Texts {
		if t == "" {
			return EmbedResult{}, fmt.Errorf("%w: input %d is an empty string", ErrEmptyInput, i)
		}
	}
	for i, t := range in.TokenIDs {
		if len(t) == 0 {
			return EmbedResult{}, fmt.Errorf("%w: input %d has no tokens", ErrEmptyInput, i)
		}
	}
	m, err := e.acquireEmbedding(ctx, id)
	if err != nil {
		return EmbedResult{}, err
	}
	defer m.life.release()
	if err := m.CheckDimensions(opts.Dimensions); err != nil {
		return EmbedResult{}, fmt.Errorf("%w: dimensions %d: %w", ErrInvalidInput, opts.Dimensions, err)
	}
	seqs, err := m.tokenize(in, opts)
	if err != nil {
		return EmbedResult{}, err
	}
	vecs, err := m.run(ctx, seqs)
	if err != nil {
		return EmbedResult{}, err
	}
	if opts.Dimensions > 0 && opts.Dimensions < m.Dim {
		for i, v := range vecs {
			vecs[i] = shorten(v, opts.Dimensions)
		}
	}
	res := EmbedResult{Model: id, Embeddings: vecs, Tokens: make([]int, n)}
	for i, s := range seqs {
		res.Tokens[i] = len(s)
		res.PromptTokens += len(s)
	}
	return res, nil
}

// tokenize turns the inputs into model sequences with special tokens,
// checking ids and lengths.
func (m *EmbeddingModel) tokenize(in EmbedInputs, opts EmbedOptions) ([][]int32, error) {
	tk := m.Tokenizer
	specials := len(tk.PostProcess(nil))
	room := m.MaxTokens - specials
	prompt := ""
	name := opts.Prompt
	if name == "" {
		name = m.Spec.DefaultPrompt
	}
	if name != "" {
		p, ok := m.Spec.Prompts[name]
		if !ok {
			return nil, fmt.Errorf("%w: model %s has no prompt named %q", ErrInvalidInput, m.Info.ID, name)
		}
		prompt = p
	}
	seqs := make([][]int32, in.len())
	for i := range seqs {
		var ids []int32
		if len(in.Texts) > 0 {
			ids = tk.Encode(prompt+in.Texts[i], false)
		} else {
			ids = in.TokenIDs[i]
			for _, id := range ids {
				if id < 0 || int(id) >= m.net.vocab() {
					return nil, fmt.Errorf("%w: input %d: token id %d is outside the vocabulary (0..%d)", ErrInvalidInput, i, id, m.net.vocab()-1)
				}
			}
		}
		if len(ids) > room {
			if !opts.Truncate {
				return nil, &InputTooLongError{Index: i, Tokens: len(ids) + specials, Max: m.MaxTokens}
			}
			ids = ids[:room]
		}
		seqs[i] = tk.PostProcess(ids) // ids itself when there are no specials: read only
	}
	return seqs, nil
}

// run hands the sequences to the worker and waits for their vectors.
func (m *EmbeddingModel) run(ctx context.Context, seqs [][]int32) ([][]float32, error) {
	j := &embedJob{ctx: ctx, seqs: seqs, out: make([][]float32, len(seqs)), ready: make(chan struct{})}
	select {
	case m.jobs <- j:
	case <-m.quit:
		return nil, fmt.Errorf("%w: %s", ErrUnloaded, m.Info.ID)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-j.ready:
		return j.out, j.err
	case <-ctx.Done():
		return nil, ctx.Err() // the worker skips the rest of a cancelled job
	}
}

// work is the model's worker: it takes the waiting jobs, runs their
// sequences in forwards of at most embedBatchTokens tokens, and answers
// each job when its last sequence is done.
func (m *EmbeddingModel) work() {
	defer close(m.done)
	type item struct {
		j *embedJob
		i int
	}
	var pending []item
	left := map[*embedJob]int{}
	finish := func(j *embedJob, err error) {
		if _, ok := left[j]; !ok {
			return
		}
		delete(left, j)
		j.err = err
		close(j.ready)
	}
	add := func(j *embedJob) {
		left[j] = len(j.seqs)
		for i := range j.seqs {
			pending = append(pending, item{j, i})
		}
	}
	for {
		if len(pending) == 0 {
			select {
			case j := <-m.jobs:
				add(j)
			case <-m.quit:
				return
			}
		}
		for more := true; more; { // take whatever else is waiting
			select {
			case j := <-m.jobs:
				add(j)
			default:
				more = false
			}
		}
		// One forward: sequences in arrival order up to the token budget
		// (always at least one), skipping cancelled jobs.
		var batch []item
		var seqs [][]int32
		tokens := 0
		rest := pending[:0]
		for _, it := range pending {
			if _, live := left[it.j]; !live {
				continue
			}
			if err := it.j.ctx.Err(); err != nil {
				finish(it.j, err)
				continue
			}
			if len(batch) > 0 && tokens+len(it.j.seqs[it.i]) > embedBatchTokens {
				rest = append(rest, it)
				continue
			}
			batch = append(batch, it)
			seqs = append(seqs, it.j.seqs[it.i])
			tokens += len(it.j.seqs[it.i])
		}
		pending = rest
		if len(batch) == 0 {
			continue
		}
		hidden, err := m.net.hidden(seqs)
		for k, it := range batch {
			if _, live := left[it.j]; !live {
				continue
			}
			if err != nil {
				finish(it.j, fmt.Errorf("embedding with %s: %w", m.Info.ID, err))
				continue
			}
			it.j.out[it.i] = model.Pool(hidden[k], m.Dim, m.Spec.Pooling, m.Spec.Normalize)
			if left[it.j]--; left[it.j] == 0 {
				finish(it.j, nil)
			}
		}
		select {
		case <-m.quit:
			for j := range left {
				finish(j, fmt.Errorf("%w: %s", ErrUnloaded, m.Info.ID))
			}
			return
		default:
		}
	}
}

// close stops the worker and frees the weights.
func (m *EmbeddingModel) close() {
	close(m.quit)
	<-m.done
	m.net.close()
}

func loadEmbeddingModel(info LocalModel) (*EmbeddingModel, error) {
	if info.Format == FormatGGUF {
		return loadGGUFEmbeddingModel(info)
	}
	spec, err := model.LoadEmbedSpec(info.Path)
	if err != nil {
		return nil, err
	}
	net, err := openEmbedBackend(info.Path, spec)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*EmbeddingModel, error) {
		net.close()
		return nil, err
	}
	tk, err := tokenizer.Load(info.Path)
	if err != nil {
		return fail(fmt.Errorf("tokenizer: %w", err))
	}
	return startEmbeddingModel(info, net, spec, tk)
}

// startEmbeddingModel checks that the tokenizer fits the network and
// starts the model's worker; on error it closes net.
func startEmbeddingModel(info LocalModel, net embedBackend, spec model.EmbedSpec, tk *tokenizer.Tokenizer) (*EmbeddingModel, error) {
	fail := func(err error) (*EmbeddingModel, error) {
		net.close()
		return nil, err
	}
	if tk.VocabSize() > net.vocab() {
		return fail(fmt.Errorf("tokenizer has %d tokens, the model's vocabulary %d", tk.VocabSize(), net.vocab()))
	}
	maxTok := net.maxPositions()
	if spec.MaxSeqLen > 0 {
		maxTok = min(maxTok, spec.MaxSeqLen)
	}
	if maxTok <= len(tk.PostProcess(nil)) {
		return fail(fmt.Errorf("maximum sequence length %d leaves no room for text", maxTok))
	}
	m := &EmbeddingModel{Info: info, Tokenizer: tk, Spec: spec, MaxTokens: maxTok, Dim: net.dim(),
		net: net, jobs: make(chan *embedJob), quit: make(chan struct{}), done: make(chan struct{})}
	go m.work()
	return m, nil
}

// closeEmbedders frees every loaded embedding model (Engine.Close).
func (e *Engine) closeEmbedders() {
	e.embedMu.Lock()
	ms := e.embedders
	e.embedders = nil
	e.embedMu.Unlock()
	for _, m := range ms {
		m.close()
	}
}

// folderKind tells an embedding model folder from a chat one: a
// sentence-transformers modules.json, or a config.json whose model_type is
// an encoder.
func folderKind(dir string) ModelKind {
	if _, err := os.Stat(filepath.Join(dir, "modules.json")); err == nil {
		return KindEmbedding
	}
	var c struct {
		ModelType string `json:"model_type"`
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil &&
		json.Unmarshal(raw, &c) == nil && model.IsEncoderType(c.ModelType) {
		return KindEmbedding
	}
	return KindChat
}
