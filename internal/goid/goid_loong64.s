#include "textflag.h"

// func Current() uintptr
TEXT ·Current(SB), NOSPLIT, $0-8
	MOVV	g, R4
	MOVV	R4, ret+0(FP)
	RET
