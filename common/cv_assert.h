/* The assert rule: asserts check bugs and stay on in every build type (STYLE: "stay on in
   release builds"), so Release's -DNDEBUG is undone here, before <assert.h>.

   <assert.h> defines assert afresh at each inclusion from NDEBUG as it stands then: included here
   with NDEBUG undefined, assert checks from this point of the file on, and a later
   #include <assert.h> keeps it so. cv_error.h includes this header, and so does every common/
   header that does not include cv_error.h, so that each common/, service and CLI file reaches it
   (cv_error_test checks that a false assert aborts).

   Self-tests fail one way: assert, or cv_assert_that where the values seen explain the failure. */
#ifndef CV_ASSERT_H
#define CV_ASSERT_H

#undef NDEBUG
#include <assert.h>
#include <stdio.h>

/* A self-test's assert that says what came instead of what was expected: when cond is false, prints
   the printf-style message on stderr, then fails by assert as every check does. cond is evaluated
   once. */
#define cv_assert_that(cond, ...)                                                                                      \
    ((cond) ? (void) 0 : (fprintf (stderr, __VA_ARGS__), fputc ('\n', stderr), assert (!#cond)))

#endif
