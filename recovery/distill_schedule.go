package recovery

import (
	"fmt"
	"math"
)

// Learning-rate schedules of the distillation.
const (
	// ScheduleConstant keeps the learning rate for every step.
	ScheduleConstant = "constant"
	// ScheduleCosine decays it from LR at the first step toward 0 at
	// the last, along half a cosine: the late steps refine rather than
	// jump around the minimum the early ones found.
	ScheduleCosine = "cosine"
)

// checkSchedule refuses an unknown schedule name.
func checkSchedule(s string) error {
	switch s {
	case ScheduleConstant, ScheduleCosine:
		return nil
	}
	return fmt.Errorf("recover kd: learning-rate schedule %q: want %s or %s", s, ScheduleConstant, ScheduleCosine)
}

// lrAt is the learning rate of step (0-based) of steps.
func lrAt(schedule string, lr float64, step, steps int) float64 {
	if schedule == ScheduleCosine && steps > 0 {
		return lr * 0.5 * (1 + math.Cos(math.Pi*float64(step)/float64(steps)))
	}
	return lr
}
