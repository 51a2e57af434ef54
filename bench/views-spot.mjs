// Spot measurement of Settee views alone (not a comparison): N docs like
// the bench _bulk_docs set, one design doc, first query (build), _sum over
// all rows, grouped _count. Usage: node bench/views-spot.mjs N, against a
// Settee at 127.0.0.1:5990 with admin/pw (e.g. target/debug/settee-serve).
const B='http://admin:pw@127.0.0.1:5990';
const h={'content-type':'application/json', authorization:'Basic '+Buffer.from('admin:pw').toString('base64')};
const call=async(m,p,b)=>{const r=await fetch('http://127.0.0.1:5990'+p,{method:m,headers:h,body:b&&JSON.stringify(b)});return [r.status, await r.json()];};
const N=Number(process.argv[2]);
await call('PUT','/v'+N+'');
for(let i=0;i<N;i+=1000){const docs=[];for(let j=i;j<i+1000;j++)docs.push({_id:'b'+String(j).padStart(7,'0'),type:'bench',n:j,note:'a small JSON document'});await call('POST','/v'+N+'/_bulk_docs',{docs});}
await call('PUT','/v'+N+'/_design/views',{views:{by_n:{map:"function (doc) { if (doc.type === 'bench') emit([doc.n % 1000, doc.n], doc.n); }",reduce:'_sum'}}});
let t=performance.now(); let r=await call('GET','/v'+N+'/_design/views/_view/by_n?limit=1&reduce=false'); console.log('build',N,(performance.now()-t).toFixed(0),'ms',r[0], JSON.stringify(r[1]).slice(0,150));
t=performance.now(); r=await call('GET','/v'+N+'/_design/views/_view/by_n'); console.log('sum',(performance.now()-t).toFixed(0),'ms',JSON.stringify(r[1]).slice(0,100));
t=performance.now(); r=await call('GET','/v'+N+'/_design/views/_view/by_n?group_level=1'); console.log('group',(performance.now()-t).toFixed(0),'ms',r[1].rows?.length);
