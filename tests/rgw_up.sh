#!/usr/bin/env bash
# A throwaway S3 server for the integration tests: radosgw over a one-node Ceph cluster.
#
#   tests/rgw_up.sh DIR RGW_PORT MON_PORT ACCESS_KEY SECRET_KEY
#
# Ceph 16 has no cluster-less backend for radosgw, so this brings up the smallest cluster that
# serves one: a monitor and one OSD whose object store lives in RAM (memstore, 1 GiB), cephx
# off, pools of size 1, everything bound to 127.0.0.1. Nothing survives a stop: the data is in
# the OSD's memory. Stop it with: kill $(cat DIR/*.pid)
# Needs the Debian packages: radosgw ceph-mon ceph-osd.
set -euo pipefail
dir=${1:?state folder}; rgw_port=${2:?rgw port}; mon_port=${3:?monitor port}
access=${4:?access key}; secret=${5:?secret key}
rm -rf "$dir"
mkdir -p "$dir"/run "$dir"/log "$dir"/mon "$dir"/osd
fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf

# Cluster-wide settings: loopback only, no authentication, replication of one, RAM-backed OSD.
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = [v1:127.0.0.1:$mon_port]
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon max pg per osd = 1000
# The OSD must not send commands to the monitor while it starts: under load it can send them
# before it has the monitor map, gets 'wrong fsid' back and never finishes booting. It is
# placed in the CRUSH map from this script instead.
osd class update on start = false
osd crush update on start = false
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
CONF

cd "$dir"
# The monitor: a map naming it, a keyring (required even with auth off), its store, then run it.
monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" monmap > /dev/null
ceph-authtool --create-keyring mon.keyring --gen-key -n mon. --cap mon 'allow *' > /dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap monmap --keyring mon.keyring
setsid ceph-mon -c "$conf" -i a -f > log/mon.out 2>&1 &
echo $! > mon.pid

# One OSD: registered with the monitor, formatted, started.
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(timeout 60 ceph -c "$conf" osd new "$osd_uuid")
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" > log/osd-mkfs.out 2>&1
timeout 60 ceph -c "$conf" osd crush add "osd.$osd_id" 1.0 root=default > /dev/null 2>&1
setsid ceph-osd -c "$conf" -i "$osd_id" -f > log/osd.out 2>&1 &
echo $! > osd.pid

# The gateway creates its pools on first start; wait until it answers HTTP.
setsid radosgw -c "$conf" -n client.rgw.a -f > log/rgw.out 2>&1 &
echo $! > rgw.pid
for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" && break
  sleep 0.5
done
curl -s -o /dev/null "http://127.0.0.1:$rgw_port/" || { echo "radosgw did not answer" >&2; exit 1; }

# An S3 user with the keys the tests use.
timeout 60 radosgw-admin -c "$conf" user create --uid=tests --display-name=tests \
  --access-key="$access" --secret="$secret" > /dev/null
echo "radosgw on http://127.0.0.1:$rgw_port"
