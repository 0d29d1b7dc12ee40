/* common/file.h - placeholder: being written */
#ifndef CP_COMMON_FILE_H
#define CP_COMMON_FILE_H
#endif
