#!/usr/bin/perl
# disable_symlinks (nginx's directive): off follows links; on refuses any
# link in the path (403, logged); if_not_owner follows a link only when its
# owner owns the target; from= trusts the prefix (a root that is itself
# reached through a link). Paths never escape the root through a link when on.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(need_bin);

need_bin();
my $s = Test::Portico->new;
my $d = $s->dir;
$s->write_file('html/real.txt', "real\n");
$s->write_file('outside/secret.txt', "secret\n");
$s->write_file('outside/dir/in.txt', "in a linked dir\n");
symlink("$d/outside/secret.txt", "$d/html/link.txt") or die "symlink: $!";
symlink("$d/outside/dir", "$d/html/ldir") or die "symlink: $!";
symlink("$d/html", "$d/linkroot") or die "symlink: $!";
my $foreign = 0;
if ($> == 0) {
    # a link owned by root to a target owned by someone else
    $s->write_file('outside/other.txt', "other\n");
    my $nobody = getpwnam('nobody');
    if (defined $nobody) {
        chown $nobody, -1, "$d/outside/other.txt";
        symlink("$d/outside/other.txt", "$d/html/foreign.txt") or die;
        $foreign = 1;
    }
}

$s->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location /off/ { alias %%ROOT%%/html/; }
        location /on/ { alias %%ROOT%%/html/; disable_symlinks on; }
        location /owner/ { alias %%ROOT%%/html/; disable_symlinks if_not_owner; }
        location /via/ { alias %%ROOT%%/linkroot/; disable_symlinks on; }
        location /viafrom/ { alias %%ROOT%%/linkroot/; disable_symlinks on from=%%ROOT%%/linkroot; }
        location /cached/ { alias %%ROOT%%/html/; disable_symlinks on; open_file_cache max=10; }
    }
CONF
$s->start;

my @cases = (
    ['/off/real.txt', 200, "real\n"], ['/off/link.txt', 200, "secret\n"],
    ['/off/ldir/in.txt', 200, "in a linked dir\n"],
    ['/on/real.txt', 200, "real\n"], ['/on/link.txt', 403], ['/on/ldir/in.txt', 403],
    ['/owner/link.txt', 200, "secret\n"], ['/owner/real.txt', 200, "real\n"],
    ['/via/real.txt', 403], ['/viafrom/real.txt', 200, "real\n"], ['/viafrom/link.txt', 403],
    ['/cached/link.txt', 403], ['/cached/real.txt', 200, "real\n"],
    ['/on/missing.txt', 404],
);
push @cases, ['/owner/foreign.txt', 403] if $foreign;
for my $c (@cases) {
    my ($path, $status, $body) = @$c;
    my $r = $s->get($path);
    is $r->{status}, $status, "$path: $status";
    is $r->{body}, $body, "$path: body" if defined $body;
}
like $s->error_log, qr/open\(\) "[^"]*link\.txt" failed \(40: Too many levels of symbolic links\)/,
    'a refused link is logged';
done_testing;
