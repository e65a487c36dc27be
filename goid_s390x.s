#include "textflag.h"

// func curG() uintptr
TEXT ·curG(SB), NOSPLIT, $0-8
	MOVD	g, R2
	MOVD	R2, ret+0(FP)
	RET
