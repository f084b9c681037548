#include "solver/random_search.h"
