#!/usr/bin/perl
# A stand-in for imapsync in the benchmark when no imapsync can be had (it is not packaged for
# Debian 12, nor on any registry this project reaches). Written for this project, not taken
# from imapsync: it replays the IMAP commands imapsync 2.229 sends for a plain copy, as
# ../shared/imapsync.md §2.1–2.3 describes them, through the same library imapsync uses
# (Mail::IMAPClient, Debian package libmail-imapclient-perl), so the round trips per message
# and the library's cost are the real ones.
#
# It leaves out work imapsync does by default — the folder-size passes before and after the
# copy, the log file, ID, the release check, flag resync of present messages, the
# --addheader rewrite — so its time is a floor for imapsync's: a tool N times faster than
# this model is at least N times faster than imapsync on the same copy.
#
# Accepts the options the benchmark passes to imapsync; others are refused.
use strict;
use warnings;
use Getopt::Long;
use Digest::MD5 qw(md5_base64);
use Mail::IMAPClient;

$| = 1;
my %o = ( port1 => 143, port2 => 143 );
GetOptions(
    \%o,           'host1=s',   'port1=i',  'user1=s', 'passfile1=s', 'host2=s',
    'port2=i',     'user2=s',   'passfile2=s', 'subfolder2=s', 'notls1', 'notls2',
    'nolog',       'addheader', 'nofoldersizes',
) or die "usage: $0 --host1 H --user1 U --passfile1 F --host2 H --user2 U --passfile2 F --subfolder2 S\n";

sub firstline {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    my $line = <$fh>;
    chomp $line;
    return $line;
}

sub login {
    my ( $host, $port, $user, $passfile ) = @_;
    my $imap = Mail::IMAPClient->new(
        Server   => $host,
        Port     => $port,
        User     => $user,
        Password => firstline($passfile),
        Uid      => 1,
        Peek     => 1,
        Clear    => 1,
        # Without it, every message_string costs one more FETCH (RFC822.SIZE): leaving it on
        # keeps the model a floor whatever imapsync's --allowsizemismatch default is.
        Ignoresizeerrors => 1,
    ) or die "login $user\@$host: $@\n";
    return $imap;
}

my $h1 = login( @o{qw(host1 port1 user1 passfile1)} );
my $h2 = login( @o{qw(host2 port2 user2 passfile2)} );
my $sep2 = $h2->separator or die "no separator on host2\n";
my $sub  = $o{subfolder2};

# imapsync's identity: the Message-Id and Received lines, normalised, sorted, MD5 (§2.2).
sub keys_of {
    my ( $imap, $uids ) = @_;
    return {} unless @$uids;
    my $headers = $imap->parse_headers( $uids, 'Message-Id', 'Received' )
      or die "parse_headers: " . $imap->LastError . "\n";
    my %key;
    for my $uid (@$uids) {
        my $h = $headers->{$uid} or next;
        my @lines;
        for my $name ( keys %$h ) {
            for my $value ( @{ $h->{$name} } ) {
                my $line = "$name: $value";
                $line =~ s/[\x80-\xff]/X/g;
                $line =~ s/\t/ /g;
                $line =~ s/^\s+|\s+$//g;
                $line =~ s/\s+/ /g;
                push @lines, uc $line;
            }
        }
        next unless @lines;
        $key{$uid} = md5_base64( join '', sort @lines );
    }
    return \%key;
}

my ( $copied, $bytes, $skipped ) = ( 0, 0, 0 );
my $start = time;
for my $f1 ( $h1->folders ) {
    next if $f1 =~ m{^(Autres utilisateurs|Dossiers partag)};
    next unless $h1->selectable($f1);
    my $f2 = $sub ne '' ? "$sub$sep2$f1" : $f1;

    $h1->select($f1) or die "select $f1: " . $h1->LastError . "\n";
    unless ( $h2->exists($f2) ) {
        $h2->create($f2) or die "create $f2: " . $h2->LastError . "\n";
    }
    $h2->subscribe($f2);
    $h2->select($f2) or die "select $f2: " . $h2->LastError . "\n";

    my $uids1 = $h1->search('ALL') || [];
    my $uids2 = $h2->search('ALL') || [];
    my $keys1 = keys_of( $h1, $uids1 );
    my $keys2 = keys_of( $h2, $uids2 );
    my $meta1 = @$uids1 ? $h1->fetch_hash( $uids1, 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE' ) : {};
    my $meta2 = @$uids2 ? $h2->fetch_hash( $uids2, 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE' ) : {};
    my %on2 = map { $_ => 1 } values %$keys2;
    my %seen1;

    for my $uid ( sort { $a <=> $b } @$uids1 ) {
        my $key = $keys1->{$uid};
        if ( defined $key ) {
            if ( $on2{$key} || $seen1{$key}++ ) { $skipped++; next }
        }
        my $m     = $meta1->{$uid};
        my $flags = join ' ', grep { !/^\\Recent$/i } split ' ', ( $m->{FLAGS} // '' );
        my $body  = $h1->message_string($uid);
        defined $body or die "fetch $f1 $uid: " . $h1->LastError . "\n";
        my $new = $h2->append_string( $f2, $body, $flags, $m->{INTERNALDATE} )
          or die "append $f2: " . $h2->LastError . "\n";
        $copied++;
        $bytes += length $body;
        my $elapsed = ( time - $start ) || 1;
        printf "msg %s/%s {%d} copied to %s/%s %.2f msgs/s %.3f MiB/s\n",
          $f1, $uid, length $body, $f2, ( ref $new ? '?' : $new ), $copied / $elapsed,
          $bytes / $elapsed / 1048576;
    }
}
$h1->logout;
$h2->logout;
print "Messages transferred           : $copied \n";
print "Messages skipped               : $skipped \n";
print "Total bytes transferred        : $bytes \n";
