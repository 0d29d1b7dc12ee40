/* placeholder: being written */
typedef int cp_placeholder_t;
