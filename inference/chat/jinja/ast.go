package jinja

// Statement nodes. Each executes into the output buffer of an evaluation.
type node interface{}

type (
	textNode   struct{ text string }
	outputNode struct{ expr expr }
	ifNode     struct {
		conds  []expr
		bodies [][]node
		orElse []node
	}
	forNode struct {
		targets []string // one name, or several for tuple unpacking
		iter    expr
		filter  expr // optional "if" clause
		body    []node
		orElse  []node
		line    int
	}
	setNode struct {
		targets []string // several for tuple unpacking
		nsName  string   // set ns.attr = ...
		nsAttr  string
		value   expr
		body    []node // block form {% set x %}...{% endset %}
		line    int
	}
	macroNode struct {
		name     string
		params   []string
		defaults []expr // aligned with params; nil when required
		body     []node
	}
	breakNode    struct{}
	continueNode struct{}
)

// Expression nodes.
type expr interface{}

type (
	constExpr struct{ v any }
	nameExpr  struct {
		name string
		line int
	}
	attrExpr struct {
		obj  expr
		name string
		line int
	}
	itemExpr struct {
		obj, key expr
		line     int
	}
	sliceExpr struct {
		obj               expr
		start, stop, step expr // nil when omitted
	}
	callExpr struct {
		fn     expr
		args   []expr
		kwargs []kwarg
		line   int
	}
	filterExpr struct {
		x      expr // nil inside a filter block (unused)
		name   string
		args   []expr
		kwargs []kwarg
		line   int
	}
	testExpr struct {
		x      expr
		name   string
		args   []expr
		negate bool
		line   int
	}
	binExpr struct {
		op   string
		l, r expr
		line int
	}
	notExpr   struct{ x expr }
	negExpr   struct{ x expr }
	posExpr   struct{ x expr }
	andExpr   struct{ l, r expr }
	orExpr    struct{ l, r expr }
	condExpr  struct{ cond, yes, no expr } // no may be nil
	compareOp struct {
		op string
		r  expr
	}
	compareExpr struct {
		l    expr
		ops  []compareOp
		line int
	}
	listExpr  struct{ items []expr }
	tupleExpr struct{ items []expr }
	dictExpr  struct{ keys, values []expr }
)

type kwarg struct {
	name  string
	value expr
}
