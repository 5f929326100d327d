#!/usr/bin/perl
# Balancing end to end: three build/peers/http_hello backends behind
# proxy_pass, each counting the connections it accepts. Without `keepalive`
# every request is one new connection, so the counts are request counts:
# weights (exact, smooth WRR), ip_hash, hash $arg_k consistent, backup and
# down; then the config errors nginx gives for these directives.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(parse_response need_bin repo_dir free_port);
use Test::Portico::Peers;

need_bin();
my $s = Test::Portico->new;
my $build = $ENV{PORTICO_BUILD} || repo_dir() . '/build';
plan skip_all => "no $build/peers/http_hello" unless -x "$build/peers/http_hello";

my @ports = ($s->port);
my @peers;
for my $i (1 .. 3) {
    my $p = free_port(@ports);
    push @ports, $p;
    push @peers, Test::Portico::Peers->spawn(
        cmd => [ "$build/peers/http_hello", '-l', "127.0.0.1:$p", '-s', $s->dir . "/hello$i.count" ],
        log => $s->dir . "/hello$i.log", addr => "127.0.0.1:$p", name => "http_hello$i",
        extra => { count_file => $s->dir . "/hello$i.count" });
}
my ($A, $B, $C) = map { "127.0.0.1:$_" } @ports[1 .. 3];
my $dead = "127.0.0.1:" . free_port(@ports); # nothing listens there

$s->conf(<<"CONF");
    upstream weighted { server $A weight=3; server $B; }
    upstream iph      { ip_hash; server $A; server $B; server $C; }
    upstream keyed    { hash \$arg_k consistent; server $A; server $B; server $C; }
    upstream failover { server $dead; server $C backup; }
    upstream standby  { server $A; server $B backup; }
    upstream withdown { server $A; server $B down; server $C; }
    upstream lc       { least_conn; server $A; server $B; }
    upstream pooled   { server $C; keepalive 4; keepalive_timeout 1s; }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name localhost;
        location /w/  { proxy_pass http://weighted; }
        location /ip/ { proxy_pass http://iph; }
        location /h/  { proxy_pass http://keyed; }
        location /f/  { proxy_pass http://failover; }
        location /s/  { proxy_pass http://standby; }
        location /d/  { proxy_pass http://withdown; }
        location /lc/ { proxy_pass http://lc; }
        location /ka/ { proxy_pass http://pooled; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
CONF
$s->start;

sub counts { [ map { $_->accepted } @peers ] }
sub delta { my ($a, $b) = @_; [ map { $b->[$_] - $a->[$_] } 0 .. 2 ] }
sub get {
    my $r = (parse_response($s->http("GET $_[0] HTTP/1.0\r\nHost: localhost\r\n\r\n", timeout => 10)))[0];
    return $r ? $r->{status} : 0;
}

# The keep-alive pool: requests spaced by more than the timer's lazy delay
# (300 ms) reuse the one idle connection, which keepalive_timeout then closes
# (the idle deadline moves per request without re-arming its timer each time).
{
    my $before = counts();
    my @st;
    for (1 .. 3) { push @st, get('/ka/'); select(undef, undef, undef, 0.4) }
    is_deeply(\@st, [200, 200, 200], 'keepalive pool: requests answered');
    is(delta($before, counts())->[2], 1, 'keepalive pool: one connection for requests 400 ms apart');
    select(undef, undef, undef, 1.8);
    is(get('/ka/'), 200, 'keepalive pool: request after keepalive_timeout');
    is(delta($before, counts())->[2], 2, 'keepalive pool: the idle connection was closed after keepalive_timeout 1s');
    is(get('/ka/'), 200, 'keepalive pool: and the new one is reused');
    is(delta($before, counts())->[2], 2, '... without another connect');
}
# n requests to $path; the per-backend request counts; all must be 200
sub spread {
    my ($path, $n) = @_;
    my $before = counts();
    my $ok = 0;
    $ok += get($path) == 200 for 1 .. $n;
    is($ok, $n, "$path: $n of $n answered 200");
    return delta($before, counts());
}
# which backend served one request
sub served_by {
    my $before = counts();
    get($_[0]) == 200 or return -1;
    my $d = delta($before, counts());
    my @hit = grep { $d->[$_] } 0 .. 2;
    return @hit == 1 && $d->[ $hit[0] ] == 1 ? $hit[0] : -1;
}

is_deeply(spread('/w/', 40), [ 30, 10, 0 ], 'weight=3 : weight=1 → exactly 30 : 10 of 40');

# nginx's ip_hash over 127.0.0: 89 → ... → 4040; 4040 % 3 = 2, the third server
is_deeply(spread('/ip/', 30), [ 0, 0, 30 ], 'ip_hash: every request from 127.0.0.1 to one backend (the third, as nginx)');

my (%owner, $stable, %used);
$stable = 1;
for my $round (1 .. 2) {
    for my $k (1 .. 15) {
        my $b = served_by("/h/?k=$k");
        $stable = 0 if $b < 0 || (defined $owner{$k} && $owner{$k} != $b);
        $owner{$k} //= $b;
        $used{$b}++;
    }
}
ok($stable, 'hash $arg_k consistent: the same k always reaches the same backend');
cmp_ok(scalar(keys %used), '>=', 2, 'hash $arg_k consistent: 15 keys spread over several backends');

is_deeply(spread('/s/', 20), [ 20, 0, 0 ], 'backup gets nothing while the primary answers');
is_deeply(spread('/f/', 10), [ 0, 0, 10 ], 'primary refusing connections: the backup answers every request');
like($s->read_file('logs/error.log'), qr/connect\(\) failed .*upstream: "\Q$dead\E"/,
     'the refused primary is logged');
like($s->read_file('logs/error.log'), qr/upstream server temporarily disabled.*\Q$dead\E/,
     'and marked down (max_fails=1)');

is_deeply(spread('/d/', 30), [ 15, 0, 15 ], 'a server marked down gets nothing; the others share');

# sequential requests never overlap, so least_conn ties every time and
# alternates by round-robin, as nginx
is_deeply(spread('/lc/', 20), [ 10, 10, 0 ], 'least_conn with equal load alternates');

$s->stop;

# ---- config errors, word for word nginx's where nginx refuses
sub conf_error {
    my ($name, $upstream, $msg) = @_;
    my $t = Test::Portico->new;
    my ($rc, $out) = $t->test_config(<<"CONF");
    upstream u { $upstream }
    server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://u; } }
CONF
    isnt($rc, 0, "$name: -t fails");
    like($out, qr/\Q$msg\E in \S+portico\.conf:\d+/, "$name: \"$msg\"");
}
conf_error('backup after ip_hash', "ip_hash; server $A; server $B backup;",
           'balancing method does not support parameter "backup"');
conf_error('backup after hash', "hash \$uri; server $A; server $B backup;",
           'balancing method does not support parameter "backup"');
conf_error('hash with a second word other than consistent', "hash \$uri ring; server $A;",
           'invalid parameter "ring"');
conf_error('hash key with an unknown variable', "hash \$nosuchvar; server $A;",
           'unknown "nosuchvar" variable');
conf_error('weight=0', "server $A weight=0;", 'invalid parameter "weight=0"');

{
    my $t = Test::Portico->new;
    my ($rc, $out) = $t->test_config(<<"CONF");
    upstream u { least_conn; server $A backup; server $B; ip_hash; }
    server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://u; } }
CONF
    isnt($rc, 0, 'backup declared before ip_hash is refused too (nginx would ignore the backup)');
    like($out, qr/balancing method does not support parameter "backup"/, '... with the same message');
    ($rc, $out) = $t->test_config(<<"CONF");
    upstream u { least_conn; server $A; server $B; hash \$uri consistent; }
    server { listen 127.0.0.1:%%PORT%%; location / { proxy_pass http://u; } }
CONF
    is($rc, 0, 'a second balancing method is accepted');
    like($out, qr/load balancing method redefined/, '... with nginx\'s warning');
}

done_testing;
