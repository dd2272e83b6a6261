/*
 * Source of the empty placeholder static libraries that the local meson
 * subprojects (subprojects/<name>/meson.build) hand to mediasoup's
 * `link_whole` lists. The real code comes from Debian's shared libraries via
 * the subprojects' dependencies, so nothing needs to be linked "whole".
 * ensure-worker.mjs copies this file into each subproject directory, because
 * a meson subproject may not reference files outside its own directory.
 */
typedef int secureconnect_mediasoup_offline_placeholder;
