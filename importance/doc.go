// Package importance scores the channels of pruning groups. A Scorer
// returns one score per index of a group's index space; higher means
// more important. Selection (package prune) keeps the highest scores.
//
// Magnitude scores aggregate over every weight-like member of a group
// (Conv/Gemm/MatMul weights on their output or input axis, normalisation
// scales): member score s_m[i] = mean over the slice of index i of |w|^p,
// then divided by the member's mean over the indices it covers, so that
// a large tensor does not drown a small one and groups compare on one
// scale; the group score is the mean of the member scores covering the
// index ("member-mean-normalised mean"). Random is the seeded baseline.
package importance
