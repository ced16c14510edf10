package stack

import (
	"context"
	"errors"

	"github.com/machineflow/machineflow/internal/harness/services"
)

// StartController starts the controller of a stack made without one
// (Options.Controller false) and waits until it is ready. Suites that
// start workflows themselves first, through the starter API, need the
// controller to come later: running from the start it would start them
// itself. It fails if the stack has a controller already.
func (s *Stack) StartController(ctx context.Context) (*services.Service, error) {
	s.mu.Lock()
	if s.Controller != nil {
		s.mu.Unlock()
		return nil, errors.New("stack: StartController: the stack has a controller already")
	}
	c, err := s.newController()
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	// Set before starting, so that Stop stops it even if the start fails
	// half-way.
	s.Controller = c
	s.mu.Unlock()
	return c, c.Start(ctx)
}
