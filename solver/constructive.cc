#include "solver/constructive.h"
