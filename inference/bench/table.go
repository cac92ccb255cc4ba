package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// String renders the result as a header and an aligned table.
func (r Result) String() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "machine: %s (%d logical CPUs, kernels %s, %s/%s)\n", m.CPU, m.Cores, m.Features, m.OS, m.Arch)
	fmt.Fprintf(&b, "model:   %s (%s, %.0fM params, %s, %.0f MiB)\n", r.ModelDir, r.Info.Architecture,
		float64(r.Info.Params)/1e6, r.Info.Quantization, float64(r.Info.FileSize)/(1<<20))
	fmt.Fprintf(&b, "runs:    median of %d; prefill %d tokens in chunks of %d; decode %d steps from an empty cache\n\n",
		r.Repeats, r.PromptLen, PrefillChunk, r.DecodeLen)
	llama := false
	for _, row := range r.Rows {
		llama = llama || row.LlamaTPS > 0
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "threads\ttest\tbatch\ttokens\ttokens/s\tmin\tmax\t"
	if llama {
		head += "llama.cpp t/s\tratio\t"
	}
	fmt.Fprintln(tw, head)
	for _, row := range r.Rows {
		line := fmt.Sprintf("%d\t%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t", row.Threads, row.Test, row.Batch, row.Tokens, row.TPS, row.Min, row.Max)
		if llama {
			if row.LlamaTPS > 0 {
				line += fmt.Sprintf("%.2f\t%.2f\t", row.LlamaTPS, row.TPS/row.LlamaTPS)
			} else {
				line += "-\t-\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	if llama {
		b.WriteString("\nratio = impetus / llama.cpp tokens/s (llama.cpp: mean of its runs)\n")
	}
	return b.String()
}
