// Package check compares two models' outputs on the same inputs and
// decides whether the candidate is close enough to the reference.
//
// For every compared output it reports the maximum and mean absolute
// error, the relative L2 error ‖ref−cand‖/‖ref‖, the cosine similarity,
// top-1 agreement (argmax over the last axis, per row) and, when labels
// are given, each model's accuracy. Metrics accumulate batch by batch, so
// datasets are streamed rather than held in memory.
//
// Thresholds ("gates") turn metrics into a verdict: allclose (atol, rtol
// in numpy.allclose's sense, relative to the reference), min-cos,
// min-top1 and max-acc-drop (in percentage points). Compare returns the
// Result and, when a gate fails, an error wrapping ErrFailed that names
// the failed gates.
//
// Non-finite values: a NaN in either model, or an infinity in one model
// where the other has a different value, makes the error metrics NaN or
// +Inf and fails every tolerance gate of that output, min-top1 included
// when the NaN is the candidate's. Equal infinities count as equal. A
// zero reference vector gives relative L2 0 when the candidate is also
// zero and +Inf otherwise; cosine similarity is 1 for two zero vectors
// and 0 when only one is zero.
//
// Inputs come from a .npy file (feeding a single-input model), an .npz
// file (one array per input name), or are synthesised from the declared
// input shapes with a seed: see Synthesize.
package check
