#!/usr/bin/perl
# Issue 2, acceptance 3: load_module refuses what it cannot trust, naming
# why and where; the example module (plain C, public header only) loads and
# answers through its own directive; disable_module and -V.
#
# The refused modules are built from t/modules/*.c by `make` (Makefile block
# "test modules (core tests)"): bad_abi.so claims ABI 2.0, bad_signature.so
# ABI 1.1 with another layout signature, no_entry.so has no pt_module_entry.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin repo_dir);

my $bin   = need_bin();
my $build = $ENV{PORTICO_BUILD} || repo_dir() . '/build';
my $tmods = "$build/t/modules";
for my $m (qw(bad_abi bad_signature no_entry)) {
    BAIL_OUT("$tmods/$m.so missing: run `make`") unless -f "$tmods/$m.so";
}
my $example = "$build/modules/example.so";
BAIL_OUT("$example missing: run `make`") unless -f $example;

my $s = Test::Portico->new;
my $file = $s->conf_file;

# `load_module` must be in the main section, so the main text carries it;
# its line number in the generated file is found by searching for it.
sub conf_with_module {
    my ($path, $http) = @_;
    $s->conf($http // "    server {\n        listen 127.0.0.1:%%PORT%%;\n        root %%ROOT%%/html;\n    }\n",
        main => "load_module $path;");
    my @lines = split /\n/, $s->read_file('conf/portico.conf');
    my ($n) = grep { $lines[$_] =~ /^load_module / } 0 .. $#lines;
    return $n + 1;
}

my $ours = qr/this portico provides ABI 1\.1 \("portico-abi:1:lp64:c99"\)/;
my @refused = (
    [ 'ABI major 2.0', "$tmods/bad_abi.so",
      qr/module "\Q$tmods\E\/bad_abi\.so" is not binary compatible: built for ABI 2\.0 \("portico-abi:2:lp64:c99"\), $ours/ ],
    [ 'same numbers, other signature', "$tmods/bad_signature.so",
      qr/module "\Q$tmods\E\/bad_signature\.so" is not binary compatible: built for ABI 1\.1 \("portico-abi:1:ilp32:c99"\), $ours/ ],
    [ 'no entry point', "$tmods/no_entry.so",
      qr/module "\Q$tmods\E\/no_entry\.so" has no pt_module_entry\(\) entry point/ ],
    [ 'missing file', "$tmods/does_not_exist.so",
      qr/dlopen\(\) "\Q$tmods\E\/does_not_exist\.so" failed \(.*No such file or directory\)/ ],
);

for my $case (@refused) {
    my ($name, $path, $msg) = @$case;
    my $line = conf_with_module($path);
    my ($rc, $out) = $s->test_config;
    is $rc, 1, "-t refuses $name: exit 1";
    like $out, qr/\[emerg\] $msg in \Q$file\E:$line\n/, "-t names the reason and $file:$line ($name)"
        or diag $out;
    like $out, qr/configuration file \Q$file\E test failed/, "-t says test failed ($name)";
    unlike $out, qr/syntax is ok/, "no success line ($name)";

    # the same refusal at start: the master exits 1 before binding anything
    my ($src, $sout) = $s->command();
    is $src, 1, "start refuses $name: exit 1" or diag $sout;
    like $sout, qr/$msg in \Q$file\E:$line/, "start names the reason and file:line ($name)";
    ok !-e $s->dir . '/logs/portico.pid', "no pid file left behind ($name)";
}

# A relative path is taken from the prefix (nginx's rule): the refusal names
# the resolved file.
{
    my $dir = $s->dir;
    my $line = conf_with_module('modules/nothing.so');
    my ($rc, $out) = $s->test_config;
    is $rc, 1, 'relative load_module path: refused';
    like $out, qr/dlopen\(\) "\Q$dir\E\/modules\/nothing\.so" failed .* in \Q$file\E:$line/,
        'relative path resolved against -p prefix';
}

# Without load_module the example's directive does not exist.
{
    $s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { example_text "x"; }
    }
CONF
    my ($rc, $out) = $s->test_config;
    is $rc, 1, 'example_text without load_module: refused';
    like $out, qr/unknown directive "example_text" in \Q$file\E:\d+/, 'as an unknown directive';
}

# The example module: loaded by path, answering through example_text with
# variables evaluated per request; static is disabled, `return` still works.
$s->write_file('html/file.txt', "static file\n");
my $line = conf_with_module($example, <<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location /ex/ { example_text "hello from the example module at $uri"; }
        location = /ret { return 200 "return works"; }
    }
CONF
{
    my ($rc, $out) = $s->test_config;
    is $rc, 0, '-t accepts the example module' or diag $out;
    like $out, qr/syntax is ok/, '-t: syntax is ok';
}
$s->start;
{
    my $r = $s->get('/ex/page');
    is $r->{status}, 200, 'example module answers 200';
    is $r->{body}, 'hello from the example module at /ex/page', 'its body, with $uri evaluated';
    is $r->{headers}{'x-example-module'}, '1', 'X-Example-Module header';
    is $r->{headers}{'content-type'}, 'text/plain', 'its Content-Type';
    is $r->{headers}{'content-length'}, length($r->{body}), 'its Content-Length';

    my $f = $s->get('/file.txt');
    is $f->{status}, 200, 'static module serves files (loaded by itself)';
    is $f->{body}, "static file\n", 'static body';
}
$s->stop;

$s->conf(<<'CONF', main => "load_module $example;\ndisable_module static;");
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location /ex/ { example_text "still here"; }
        location = /ret { return 200 "return works"; }
    }
CONF
$s->start;
{
    my $f = $s->get('/file.txt');
    is $f->{status}, 404, 'disable_module static: files are no longer served';
    unlike $f->{body}, qr/static file/, 'file content not sent';
    my $r = $s->get('/ret');
    is $r->{status}, 200, 'return still answers';
    is $r->{body}, 'return works', 'return body';
    my $e = $s->get('/ex/x');
    is $e->{body}, 'still here', 'example module unaffected by disable_module static';
}
$s->stop;

# disable_module of a name that is not a module of the project
{
    $s->conf("    server { listen 127.0.0.1:%%PORT%%; }\n", main => 'disable_module nosuch;');
    my ($rc, $out) = $s->test_config;
    is $rc, 1, 'disable_module of an unknown module: refused';
    like $out, qr/unknown module "nosuch"/, 'names the module';
}

# Loading the same module twice
{
    $s->conf("    server { listen 127.0.0.1:%%PORT%%; }\n", main => "load_module $example;\nload_module $example;");
    my ($rc, $out) = $s->test_config;
    is $rc, 1, 'the same module twice: refused';
    like $out, qr/module "example" is already loaded in \Q$file\E:\d+/, 'says so, with file:line';
}

# -V: version, ABI and both module lists
{
    my ($rc, $out) = Test::Portico::run_bounded(10, $bin, '-V');
    is $rc, 0, '-V exits 0';
    like $out, qr/^portico version: portico\/\S+$/m, '-V: version';
    like $out, qr/^module ABI: 1\.1 \(portico-abi:1:lp64:c99\)$/m, '-V: ABI version and signature';
    like $out, qr/^modules:.* static\b/m, '-V: static among the project modules';
    like $out, qr/^modules for load_module:.* example\b/m, '-V: example listed for load_module';
}

done_testing;
