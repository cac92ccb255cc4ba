module github.com/impetusllm/impetus

go 1.26.0
