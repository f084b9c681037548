#include "solver/anneal.h"
