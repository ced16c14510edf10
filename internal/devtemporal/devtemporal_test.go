package devtemporal

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/machineflow/machineflow/internal/names"
)

func TestDevServerRegistersSearchAttributes(t *testing.T) {
	srv := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := srv.Client().OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatalf("listing search attributes: %v", err)
	}
	for _, name := range names.KeywordSearchAttributes() {
		typ, ok := resp.GetCustomAttributes()[name]
		if !ok {
			t.Errorf("search attribute %s not registered; have %v", name, resp.GetCustomAttributes())
			continue
		}
		if typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s has type %s, want Keyword", name, typ)
		}
	}

	// The namespace exists and answers: a workflow list query on our
	// attributes is accepted only when they are registered.
	_, err = srv.Client().ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: names.SearchAttrMachineName + " = 'nothing'",
	})
	if err != nil {
		t.Fatalf("query on %s rejected: %v", names.SearchAttrMachineName, err)
	}
}
