"""What residents say (情, 社情民意): categories, titles and wording of synthetic requests and
opinions, where each is located, which department answers it, and its seasons."""

from __future__ import annotations

from dataclasses import dataclass

from shequ.core.registry.models import SituationSource


@dataclass(frozen=True)
class Category:
    name: str
    weight: float
    where: str  # room | building | tower | walkup | compound | street
    department: str
    titles: tuple[str, ...]
    details: tuple[str, ...]
    sentiment: str = "negative"
    summer: float = 1.0  # weight multiplier from June to September


CATEGORIES: tuple[Category, ...] = (
    Category("噪音扰民", 14, "room", "城运中心",
             ("楼上装修噪音扰民", "夜间装修施工噪音", "广场舞音响声音过大", "楼上夜间噪音",
              "空调外机噪音扰民", "邻居家麻将声扰民"),
             ("晚上十点以后仍有声响", "周末一早就开始施工", "已多次沟通无果", "家中老人休息受影响"),
             summer=1.5),
    Category("电梯故障", 6, "tower", "城运中心",
             ("电梯停运", "电梯困人", "电梯运行异响", "电梯门无法关闭", "电梯频繁故障要求维修"),
             ("楼内老人上下楼困难", "物业报修后迟迟未修", "本月已是第三次", "希望彻底检修")),
    Category("垃圾分类", 10, "compound", "城建中心",
             ("垃圾厢房湿垃圾满溢", "垃圾混投现象严重", "垃圾投放点异味大", "大件垃圾长期未清运",
              "定时投放时间不合理"),
             ("影响周边居民生活", "夏天蚊蝇很多", "希望增加清运频次", "建议加强志愿者值守"),
             summer=1.4),
    Category("停车难", 10, "compound", "城建中心",
             ("小区停车位不足", "车辆占用消防通道", "非机动车乱停放", "僵尸车长期占用车位",
              "外来车辆进入小区停车"),
             ("晚上回家找不到车位", "消防车无法通行存在隐患", "希望规划停车位", "希望物业加强管理")),
    Category("群租", 4, "room", "城运中心",
             ("疑似群租", "群租房人员进出频繁", "隔断群租存在安全隐患"),
             ("一套房住了七八个人", "夜间进出影响休息", "担心消防安全")),
    Category("高空抛物", 4, "building", "城运中心",
             ("楼上高空抛物", "阳台花盆有坠落隐患", "楼上扔烟头", "高空坠物砸坏车辆"),
             ("差点砸到行人", "希望查找抛物楼层", "希望加装监控")),
    Category("飞线充电", 5, "building", "城运中心",
             ("电动车飞线充电", "楼道内电动车充电", "电瓶车停放在楼道"),
             ("存在火灾隐患", "堵塞楼道影响通行", "希望小区增设充电桩")),
    Category("房屋漏水", 7, "room", "物业",
             ("楼上漏水至我家", "屋顶渗漏", "外墙渗水", "下水管道堵塞返水"),
             ("天花板已经发霉", "下雨天更严重", "与楼上协商未果", "希望物业尽快维修"),
             summer=1.3),
    Category("加装电梯", 5, "walkup", "城建中心",
             ("咨询加装电梯政策", "申请加装电梯", "加装电梯意见不统一", "加装电梯施工扰民"),
             ("楼里老人多爬楼困难", "低楼层住户有顾虑", "希望居委协调", "想了解补贴标准"),
             sentiment="neutral"),
    Category("违章搭建", 3, "room", "城运中心",
             ("底楼违章搭建", "屋顶违建", "破墙开店"),
             ("影响通行和采光", "希望依法拆除")),
    Category("绿化养护", 4, "compound", "城建中心",
             ("树木遮挡采光", "树枝过长需修剪", "绿地被占用种菜"),
             ("一楼常年晒不到太阳", "台风季担心断枝", "希望恢复绿化")),
    Category("物业服务", 7, "compound", "城建中心",
             ("物业维修不及时", "物业费收费不透明", "小区保洁不到位", "门岗管理松懈"),
             ("多次反映没有回音", "希望公开收支", "希望业委会监督")),
    Category("公共设施", 4, "compound", "城建中心",
             ("路灯不亮", "健身器材损坏", "楼道灯损坏", "小区道路破损"),
             ("晚上出行不便", "老人容易摔倒", "希望尽快修复")),
    Category("道路积水", 2, "street", "城建中心",
             ("雨后路面积水", "窨井盖缺失"),
             ("行人车辆通行困难", "存在安全隐患"), summer=3.0),
    Category("占道经营", 4, "street", "城运中心",
             ("商铺占道经营", "流动摊贩占道", "沿街商铺夜间噪音", "餐饮油烟扰民"),
             ("人行道无法通行", "影响周边居民休息", "希望执法部门管理")),
    Category("宠物扰民", 3, "room", "居委",
             ("犬只吠叫扰民", "遛狗不牵绳", "宠物粪便无人清理"),
             ("孩子和老人很害怕", "希望加强文明养宠宣传")),
    Category("为老服务", 5, "room", "社区服务办",
             ("咨询长者食堂助餐", "申请居家养老服务", "独居老人需要关心", "申请适老化改造"),
             ("家中老人行动不便", "子女不在身边", "希望上门评估"), sentiment="neutral"),
    Category("政策咨询", 5, "room", "社区事务受理服务中心",
             ("咨询养老金调整", "咨询医保报销", "咨询居住证办理", "咨询租房补贴"),
             ("希望电话回复", "希望告知所需材料"), sentiment="neutral"),
    Category("表扬感谢", 3, "compound", "居委",
             ("表扬居委干部", "感谢网格员热心帮助", "表扬物业维修及时"),
             ("服务周到耐心", "为居民办实事"), sentiment="positive"),
    Category("意见建议", 4, "compound", "社区自治办",
             ("建议增设休闲座椅", "建议增加非机动车充电桩", "建议开设老年智能手机课程", "建议增设快递柜"),
             ("方便居民生活", "希望纳入实事项目"), sentiment="neutral"),
)

SOURCES: tuple[tuple[str, float], ...] = (
    (SituationSource.HOTLINE_12345, 35), (SituationSource.RESIDENT_APP, 20),
    (SituationSource.GRID_PATROL, 18), (SituationSource.COMMITTEE_VISIT, 14),
    (SituationSource.SURVEY, 5), (SituationSource.MEETING, 5), (SituationSource.OTHER, 3),
)
# Things a grid worker does not find on patrol: these come from the residents themselves.
NOT_ON_PATROL = frozenset({"政策咨询", "表扬感谢", "为老服务", "噪音扰民", "房屋漏水", "宠物扰民"})
