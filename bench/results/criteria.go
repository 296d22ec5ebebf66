package main

import (
	"context"
)

func criteriaSection(ctx context.Context, e *evaluator) (string, error) {
	return "(not yet measured)\n", nil
}
