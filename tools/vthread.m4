# vthread.m4 — link a program statically with vthread.
#
# VTHREAD_ENABLE([ACTION-IF-FOUND], [ACTION-IF-NOT-FOUND])
#
# Finds vthread with pkg-config and adds to LIBS the flags that link
# libvthread.a into the program (whole archive, plus a dynamic list so the
# program's shared libraries use vthread's pthread functions too).  Every
# thread the program creates is then a vthread lightweight thread, with no
# LD_PRELOAD.  Sets and substitutes VTHREAD_LIBS.  Without
# ACTION-IF-NOT-FOUND, a missing vthread is an error.
AC_DEFUN([VTHREAD_ENABLE],
[AC_REQUIRE([PKG_PROG_PKG_CONFIG])dnl
AC_MSG_CHECKING([for vthread])
AS_IF([test -n "$PKG_CONFIG" && $PKG_CONFIG --exists vthread],
  [VTHREAD_LIBS=`$PKG_CONFIG --variable=static_libs vthread`
   LIBS="$LIBS $VTHREAD_LIBS"
   AC_MSG_RESULT([yes ($($PKG_CONFIG --modversion vthread))])
   $1],
  [AC_MSG_RESULT([no])
   m4_default([$2],
     [AC_MSG_ERROR([vthread not found: install it, or set PKG_CONFIG_PATH to the directory of vthread.pc])])])
AC_SUBST([VTHREAD_LIBS])dnl
])
