package main

// defaultJobImage is the image emitted job specs run unless --image says
// otherwise.
const defaultJobImage = "pare:" + "latest"

// emitOptions configure --emit-jobs.
type emitOptions struct {
	Kind, Image, Workdir, PVC string
}

func emitJobs(r *recipe, plans []runPlan, o runOptions) (*runResult, error) {
	return nil, usageErrorf("run: --emit-jobs is not implemented yet")
}
